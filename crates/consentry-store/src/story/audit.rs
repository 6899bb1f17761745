//! Chapters on the audit log: appends, listing, concurrent appends on one chain, tampering detected.

use super::*;

pub(super) fn audit_entry(org: Option<OrgId>, action: AuditAction, n: usize) -> NewAuditEntry {
    NewAuditEntry {
        at: now(),
        actor: Actor::Operator(format!("story-{n}")),
        org_id: org,
        action,
        target: format!("thing:{n}"),
        detail: serde_json::json!({"n": n, "note": "no secrets here", "nested": {"b": 2, "a": [1, "x"]}}),
    }
}

/// Every entry of the log and its head, verified from the first entry.
pub(super) async fn verify_all(store: &dyn Store) -> Result<u64, ChainBreak> {
    let head = store.audit_head().await.expect("read the audit head");
    let mut v = ChainVerifier::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(None, after, 200)
            .await
            .expect("list the audit log");
        for e in &page {
            v.push(e)?;
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = Some(last.seq),
            _ => break,
        }
    }
    v.finish(&head)
}

/// The audit log: appends come back as stored, chained and numbered; listing per organization pages
/// both ways; concurrent appends keep one linear chain that verifies.
pub async fn audit_log(store: std::sync::Arc<dyn Store>) {
    let a = new_org(store.as_ref(), "audit-a").await;
    let b = new_org(store.as_ref(), "audit-b").await;
    let mut mine = Vec::new();
    for n in 0..7 {
        let org = if n % 3 == 2 { b.id } else { a.id };
        let e = store
            .append_audit(&audit_entry(Some(org), AuditAction::WebhookCreated, n))
            .await
            .expect("append an audit entry");
        assert_eq!(
            e.hash,
            e.computed_hash(),
            "the stored hash covers the entry"
        );
        assert_eq!(e.action, "webhook_created");
        if let Some(prev) = mine.last() {
            let prev: &AuditEntry = prev;
            assert!(e.seq > prev.seq, "sequence numbers grow");
        }
        mine.push(e);
    }
    let platform = store
        .append_audit(&audit_entry(None, AuditAction::AccountCreated, 99))
        .await
        .unwrap();
    assert_eq!(platform.org_id, None);

    let a_all = store.list_audit(Some(a.id), None, 100).await.unwrap();
    let a_mine: Vec<&AuditEntry> = mine.iter().filter(|e| e.org_id == Some(a.id)).collect();
    assert_eq!(a_all.len(), a_mine.len(), "only org a's entries");
    for (got, want) in a_all.iter().zip(a_mine) {
        assert_eq!(got, want, "an entry reads back exactly as appended");
    }
    // Paging oldest first and newest first.
    let first_two = store.list_audit(Some(a.id), None, 2).await.unwrap();
    let next = store
        .list_audit(Some(a.id), Some(first_two[1].seq), 2)
        .await
        .unwrap();
    assert_eq!(first_two[0].seq, a_all[0].seq);
    assert_eq!(next[0].seq, a_all[2].seq);
    let newest = store.list_audit_newest(Some(a.id), None, 3).await.unwrap();
    assert_eq!(
        newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        a_all
            .iter()
            .rev()
            .take(3)
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    );
    let older = store
        .list_audit_newest(Some(a.id), Some(newest[2].seq), 3)
        .await
        .unwrap();
    assert_eq!(older[0].seq, a_all[a_all.len() - 4].seq);
    let b_all = store
        .list_audit_newest(Some(b.id), None, 100)
        .await
        .unwrap();
    assert_eq!(b_all.len(), 2);
    assert!(b_all.iter().all(|e| e.org_id == Some(b.id)));

    // Concurrent appends: 8 writers × 15 entries, each gets its own number and the chain stays linear.
    let c = new_org(store.as_ref(), "audit-concurrent").await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..15 {
                let e = store
                    .append_audit(&audit_entry(
                        Some(c.id),
                        AuditAction::TokenIssued,
                        w * 100 + i,
                    ))
                    .await?;
                seqs.push(e.seq);
            }
            Ok::<Vec<u64>, StoreError>(seqs)
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for s in t.await.unwrap().expect("no append fails under concurrency") {
            assert!(seqs.insert(s), "sequence number {s} handed out twice");
        }
    }
    assert_eq!(seqs.len(), 120);
    let listed = store.list_audit(Some(c.id), None, 500).await.unwrap();
    assert_eq!(listed.len(), 120);
    verify_all(store.as_ref())
        .await
        .expect("the chain verifies after concurrent appends");
}

/// Tampering underneath the store is detected, naming the entry: an edited row, a deleted row, rows
/// whose places were swapped, and a deleted last row. Needs a database of its own (the chain is
/// broken and repaired in turn) and `exec`, which runs one SQL statement on it directly, with the
/// append-only triggers already disabled.
pub async fn audit_tampering<F>(store: &dyn Store, exec: F)
where
    F: Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>,
{
    let org = new_org(store, "audit-tamper").await;
    let mut e = Vec::new();
    for n in 0..5 {
        e.push(
            store
                .append_audit(&audit_entry(Some(org.id), AuditAction::SignIn, n))
                .await
                .unwrap(),
        );
    }
    let total = verify_all(store).await.expect("intact before tampering");
    assert!(total >= 5);
    exec("CREATE TABLE audit_backup AS SELECT * FROM audit_log".into()).await;
    let restore = || async {
        exec("DELETE FROM audit_log".into()).await;
        exec("INSERT INTO audit_log SELECT * FROM audit_backup".into()).await;
        assert_eq!(verify_all(store).await, Ok(total), "restored");
    };

    exec(format!(
        "UPDATE audit_log SET target = 'thing:mallory' WHERE seq = {}",
        e[2].seq
    ))
    .await;
    assert_eq!(
        verify_all(store).await,
        Err(ChainBreak {
            seq: e[2].seq,
            reason: BreakReason::Edited
        }),
        "an edited row"
    );
    restore().await;

    exec(format!("DELETE FROM audit_log WHERE seq = {}", e[1].seq)).await;
    let broken = verify_all(store).await.expect_err("a deleted row");
    assert_eq!(broken.seq, e[1].seq);
    assert!(
        matches!(broken.reason, BreakReason::Missing { .. }),
        "{broken}"
    );
    restore().await;

    // Swap the places of two rows (their sequence numbers).
    let (x, y) = (e[1].seq, e[3].seq);
    exec(format!(
        "UPDATE audit_log SET seq = -seq WHERE seq IN ({x}, {y})"
    ))
    .await;
    exec(format!(
        "UPDATE audit_log SET seq = {} + seq WHERE seq < 0",
        x + y
    ))
    .await;
    let broken = verify_all(store).await.expect_err("reordered rows");
    assert_eq!(broken.seq, x, "{broken}");
    assert_eq!(broken.reason, BreakReason::Edited);
    restore().await;

    // A row's hash recomputed after editing it: the next one no longer links.
    let mut forged = e[2].clone();
    forged.target = "thing:forged".into();
    forged.hash = forged.computed_hash();
    exec(format!(
        "UPDATE audit_log SET target = 'thing:forged', hash = '{}' WHERE seq = {}",
        forged.hash, forged.seq
    ))
    .await;
    assert_eq!(
        verify_all(store).await,
        Err(ChainBreak {
            seq: e[3].seq,
            reason: BreakReason::Unlinked
        })
    );
    restore().await;

    let last = e[4].seq;
    exec(format!("DELETE FROM audit_log WHERE seq = {last}")).await;
    let broken = verify_all(store).await.expect_err("a deleted last row");
    assert_eq!(broken.seq, last);
    assert!(
        matches!(broken.reason, BreakReason::Truncated { .. }),
        "{broken}"
    );
    restore().await;
    exec("DROP TABLE audit_backup".into()).await;
}
