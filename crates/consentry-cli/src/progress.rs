//! Progress of long commands (`profiles check`, `db copy`, `master-key rotate`, seeding the demo) on
//! standard error: a bar on a terminal, plain lines otherwise, so CI logs and pipes stay readable.
//!
//! Work is reported in phases ("copied 120/120 profiles"): [`Progress::begin`] starts one with its total,
//! [`Progress::set`] / [`Progress::inc`] move it, [`Progress::end`] closes it with a line. Both ways print
//! that closing line; a bar also shows the phase live, while plain lines report an unfinished phase at
//! most every few seconds.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain-line mode reports a phase still under way.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Where progress goes.
enum Out {
    /// A live bar (on a terminal); closed phases are printed above it.
    Bar(ProgressBar),
    /// One line per report.
    Lines {
        out: Box<dyn Write + Send>,
        last: Instant,
        every: Duration,
    },
}

/// The progress of one command: phases of counted work.
pub struct Progress {
    out: Out,
    verb: String,
    noun: String,
    done: u64,
    total: u64,
    open: bool,
}

impl Progress {
    /// Progress on standard error: a bar when it is a terminal, plain lines when it is not.
    pub fn on_stderr() -> Self {
        use std::io::IsTerminal as _;
        if std::io::stderr().is_terminal() {
            Self::bar(ProgressDrawTarget::stderr())
        } else {
            Self::lines(Box::new(std::io::stderr()), LINE_INTERVAL)
        }
    }

    /// Plain lines to `out`, an unfinished phase reported at most every `every`.
    pub fn lines(out: Box<dyn Write + Send>, every: Duration) -> Self {
        Self::with(Out::Lines {
            out,
            last: Instant::now(),
            every,
        })
    }

    /// A bar drawn on `target`.
    pub fn bar(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} {pos}/{len} {msg} [{bar:30}] {elapsed}")
                .expect("a valid progress template")
                .progress_chars("=> "),
        );
        Self::with(Out::Bar(bar))
    }

    fn with(out: Out) -> Self {
        Self {
            out,
            verb: String::new(),
            noun: String::new(),
            done: 0,
            total: 0,
            open: false,
        }
    }

    /// Starts a phase of `total` items: `verb` says what is done to each ("copied"), `noun` what they are
    /// ("profiles"). An open phase is ended first.
    pub fn begin(&mut self, verb: &str, noun: &str, total: u64) {
        if self.open {
            self.end();
        }
        self.verb = verb.to_string();
        self.noun = noun.to_string();
        self.done = 0;
        self.total = total;
        self.open = true;
        match &mut self.out {
            Out::Bar(bar) => {
                bar.reset();
                bar.set_prefix(self.verb.clone());
                bar.set_message(self.noun.clone());
                bar.set_length(total);
                bar.set_position(0);
            }
            Out::Lines { last, .. } => *last = Instant::now(),
        }
    }

    /// Sets how many items of the phase are done (a total found too small grows with it).
    pub fn set(&mut self, done: u64) {
        self.done = done;
        self.total = self.total.max(done);
        let due = match &self.out {
            Out::Bar(bar) => {
                bar.set_length(self.total);
                bar.set_position(done);
                false
            }
            Out::Lines { last, every, .. } => last.elapsed() >= *every && done < self.total,
        };
        if due {
            let line = self.line();
            self.write_line(&line);
        }
    }

    /// One more item (or `n`) done.
    pub fn inc(&mut self, n: u64) {
        self.set(self.done + n);
    }

    /// Ends the phase with its line, e.g. "copied 120/120 profiles".
    pub fn end(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let line = self.line();
        self.write_line(&line);
    }

    /// Ends an open phase and removes the bar.
    pub fn finish(mut self) {
        self.end();
        if let Out::Bar(bar) = &self.out {
            bar.finish_and_clear();
        }
    }

    /// The phase as a line: "copied 12/120 profiles".
    fn line(&self) -> String {
        format!("{} {}/{} {}", self.verb, self.done, self.total, self.noun)
    }

    fn write_line(&mut self, line: &str) {
        match &mut self.out {
            Out::Bar(bar) => bar.println(line),
            Out::Lines { out, last, .. } => {
                // Progress is a courtesy: a closed standard error must not fail the command.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                *last = Instant::now();
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A command that fails half-way leaves no bar behind (its error follows on a clean line).
        if let Out::Bar(bar) = &self.out {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// A buffer the test reads after the progress wrote to it.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A terminal that keeps what is drawn on it: every write, in order.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn writes(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
        fn push(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_string());
            Ok(())
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_lines_close_each_phase_and_report_slow_ones() {
        let buf = Buffer::default();
        // Never due: only the closing lines.
        let mut p = Progress::lines(Box::new(buf.clone()), Duration::from_secs(3600));
        p.begin("copied", "profiles", 120);
        p.set(100);
        p.set(120);
        p.begin("copied", "secrets", 0);
        p.finish();
        assert_eq!(buf.text(), "copied 120/120 profiles\ncopied 0/0 secrets\n");

        // Always due: an unfinished phase is reported as it moves, then closed once.
        let buf = Buffer::default();
        let mut p = Progress::lines(Box::new(buf.clone()), Duration::ZERO);
        p.begin("checked", "app profiles", 3);
        p.inc(1);
        p.inc(1);
        p.inc(1);
        p.end();
        p.end();
        assert_eq!(
            buf.text(),
            "checked 1/3 app profiles\nchecked 2/3 app profiles\nchecked 3/3 app profiles\n"
        );
    }

    #[test]
    fn a_total_found_too_small_grows() {
        let buf = Buffer::default();
        let mut p = Progress::lines(Box::new(buf.clone()), Duration::from_secs(3600));
        p.begin("re-sealed", "secrets", 2);
        p.set(5);
        p.finish();
        assert_eq!(buf.text(), "re-sealed 5/5 secrets\n");
    }

    #[test]
    fn the_bar_draws_the_phase_and_prints_its_closing_line() {
        let screen = Screen::default();
        let mut p = Progress::bar(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        p.begin("copied", "profiles", 120);
        p.set(60);
        if let Out::Bar(bar) = &p.out {
            assert_eq!((bar.position(), bar.length()), (60, Some(120)));
            bar.force_draw();
        }
        let drawn = screen.writes().join("\n");
        assert!(drawn.contains("copied 60/120 profiles ["), "{drawn}");
        p.set(120);
        p.finish();
        let drawn = screen.writes();
        assert!(
            drawn.iter().any(|w| w == "copied 120/120 profiles"),
            "{drawn:?}"
        );
    }
}
