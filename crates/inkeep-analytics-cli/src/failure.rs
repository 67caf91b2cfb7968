//! Why a command failed, and the documented exit code each kind of failure gives.

use std::fmt;

use inkeep_analytics::Error;

/// Usage errors and input refused before any request.
pub const EXIT_USAGE: u8 = 2;
/// 401 and 403.
pub const EXIT_AUTH: u8 = 3;
/// 404.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Any other answer of the API with an error status, or one that does not decode.
pub const EXIT_API: u8 = 5;
/// The network: refused connections, resets, timeouts.
pub const EXIT_NETWORK: u8 = 6;
/// Anything else, such as an output file that cannot be written.
pub const EXIT_OTHER: u8 = 1;

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// The SDK reported an error while doing `what`.
    Api {
        /// What the program was doing, such as `exporting conversations`.
        what: String,
        /// The error.
        error: Error,
    },
    /// The command line or an input file is wrong.
    Usage(String),
    /// Reading or writing a local file failed.
    Io {
        /// What the program was doing.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The reader of standard output went away (`| head`): not a failure.
    BrokenPipe,
    /// A long job (an export) failed part way: why, then how far it got and how to resume it, on
    /// the same line, since a failure is one line on stderr.
    Unfinished {
        /// The failure that ended it.
        failure: Box<Failure>,
        /// How far it got and the command that resumes it.
        progress: String,
    },
    /// `record` ended without delivering everything it read: the counts, and the exit code.
    Incomplete {
        /// What was read, delivered, pending, refused and dropped.
        summary: String,
        /// The exit code that says the first reason.
        code: u8,
    },
}

impl Failure {
    /// A failure of the SDK while doing `what`.
    pub fn api(what: impl Into<String>) -> impl FnOnce(Error) -> Failure {
        let what = what.into();
        move |error| Failure::Api { what, error }
    }

    /// A failure of local I/O while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Failure {
        let what = what.into();
        move |error| {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::BrokenPipe
            } else {
                Failure::Io { what, error }
            }
        }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Io { .. } => EXIT_OTHER,
            Failure::BrokenPipe => 0,
            Failure::Incomplete { code, .. } => *code,
            Failure::Unfinished { failure, .. } => failure.exit_code(),
            Failure::Api { error, .. } => match error {
                // A key refused locally for an operation it may not call is an authentication
                // failure, like the 403 the server would answer.
                Error::Permission { .. } => EXIT_AUTH,
                Error::InvalidInput { .. } | Error::Configuration { .. } => EXIT_USAGE,
                Error::Transport { .. } | Error::Timeout { .. } => EXIT_NETWORK,
                Error::Api(api) => match api.status.as_u16() {
                    401 | 403 => EXIT_AUTH,
                    404 => EXIT_NOT_FOUND,
                    _ => EXIT_API,
                },
                _ => EXIT_API,
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            Failure::Io { what, error } => write!(f, "{what}: {error}"),
            Failure::BrokenPipe => f.write_str("the output was closed"),
            Failure::Incomplete { summary, .. } => {
                write!(f, "not everything was delivered: {summary}")
            }
            Failure::Unfinished { failure, progress } => write!(f, "{failure}; {progress}"),
            // The SDK's own message: the operation, the status, the code, the detail and the
            // request id of an API error, or the root cause of a transport error.
            Failure::Api { what, error } => write!(f, "{what} failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_failure(error: Error) -> Failure {
        Failure::Api {
            what: "logging feedback".into(),
            error,
        }
    }

    #[test]
    fn a_key_refused_locally_exits_as_an_authentication_failure() {
        let refused = api_failure(Error::Permission {
            operation: "getAllConversation",
            reason: "a web integration key may not call it".into(),
        });
        assert_eq!(refused.exit_code(), EXIT_AUTH);
        assert!(refused.to_string().starts_with("logging feedback failed: "));
    }

    #[test]
    fn input_refused_locally_is_a_usage_error() {
        let invalid = api_failure(Error::InvalidInput {
            reason: "limit must be at most 100".into(),
        });
        assert_eq!(invalid.exit_code(), EXIT_USAGE);
    }
}
