//! How a stage of the reconcile ends, when it does not deliver its result.
//!
//! Two different things can stop a stage, and they are handled differently:
//! - a problem with the VideoCounter itself or with its Kafka (a spec the
//!   schema could not reject, a missing Secret, an unreachable broker): the
//!   stages that need the result are skipped, the others still run, and the
//!   problem becomes the `Degraded` condition; the reconcile succeeds;
//! - a failed request to the API server: the reconcile stops and is retried.
//!
//! A stage returns [`StageResult`]; `?` works for both kinds inside it, and
//! the pipeline sorts them with [`Gate::pass`].

use crate::error::Error;

/// Something wrong that the operator cannot fix by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason, e.g. `TopicPartitionMismatch`.
    pub reason: String,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Why a stage did not deliver its result.
#[derive(Debug)]
pub enum Halt {
    /// The user must fix something; reported in the status.
    Blocked(Problem),
    /// The API server failed; the reconcile is retried.
    Failed(Error),
}

/// What a stage returns.
pub type StageResult<T> = Result<T, Halt>;

impl From<Problem> for Halt {
    fn from(problem: Problem) -> Self {
        Self::Blocked(problem)
    }
}

impl From<Error> for Halt {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

impl From<kube::Error> for Halt {
    fn from(error: kube::Error) -> Self {
        Self::Failed(Error::Kube(error))
    }
}

/// The first problem of one reconcile: once a stage is blocked, the stages
/// that depend on it are skipped and the status reports this problem.
#[derive(Debug, Default)]
pub struct Gate {
    problem: Option<Problem>,
}

impl Gate {
    /// The stage's result, or `None` when it was blocked (the problem is kept
    /// if it is the first); a failure ends the reconcile.
    pub fn pass<T>(&mut self, result: StageResult<T>) -> Result<Option<T>, Error> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Halt::Blocked(problem)) => {
                self.problem.get_or_insert(problem);
                Ok(None)
            }
            Err(Halt::Failed(error)) => Err(error),
        }
    }

    /// The problem that blocked a stage, if any did.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_pass_and_the_first_problem_is_kept() {
        let mut gate = Gate::default();
        assert_eq!(gate.pass(Ok::<_, Halt>(7)).unwrap(), Some(7));
        assert!(gate.problem().is_none());
        let first: StageResult<()> = Err(Problem::new("SecretNotFound", "no secret").into());
        assert_eq!(gate.pass(first).unwrap(), None);
        let second: StageResult<()> = Err(Problem::new("KafkaUnavailable", "down").into());
        assert_eq!(gate.pass(second).unwrap(), None);
        assert_eq!(gate.problem().unwrap().reason, "SecretNotFound");
    }

    #[test]
    fn a_failure_ends_the_reconcile() {
        let mut gate = Gate::default();
        let failed: StageResult<()> = Err(Error::MissingNamespace("likes".into()).into());
        assert!(matches!(gate.pass(failed), Err(Error::MissingNamespace(_))));
        assert!(
            gate.problem().is_none(),
            "a failure is not a problem of the VideoCounter"
        );
    }
}
