//! Errors of the library API.

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Key or certificate generation failed.
    #[error(
        "key or certificate error: {0}; check the certificate/key files given, or let the simulator generate them"
    )]
    Crypto(String),
    /// Binding the listen address or writing files failed.
    #[error("{context}: {source}; check the address is free and the directory is writable")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The TOML does not parse or does not match the schema.
    #[error(
        "the scenario is not valid TOML for entra-sim: {0}; compare it with scenarios/contoso.toml"
    )]
    Parse(String),
    /// A reference inside the scenario does not resolve.
    #[error(
        "the scenario refers to {what} `{name}`, which it does not define; add it or fix the reference"
    )]
    Unknown {
        /// Kind of object.
        what: &'static str,
        /// The dangling reference.
        name: String,
    },
    /// Two objects share an identifier.
    #[error("the scenario defines {what} `{name}` twice; identifiers must be unique")]
    Duplicate {
        /// Kind of object.
        what: &'static str,
        /// The duplicated identifier.
        name: String,
    },
    /// A certificate in the scenario cannot be read.
    #[error(
        "the certificate of app `{app}` cannot be read ({reason}); give a PEM or base64 DER X.509 certificate"
    )]
    Certificate {
        /// The app's client ID.
        app: String,
        /// Parser message.
        reason: String,
    },
}

/// A control operation that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The target does not exist.
    #[error(
        "{what} `{name}` does not exist in the simulator; check GET /_sim/state for valid identifiers"
    )]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// The identifier given.
        name: String,
    },
    /// The request is malformed.
    #[error("invalid control request: {0}")]
    Invalid(String),
}
