//! Which Event a status change deserves (pure): a Warning when the
//! VideoCounter becomes degraded or degraded in another way, a `Recovered`
//! once it no longer is, nothing while it stays the same. Decided from the
//! previous status, so a restarted operator does not repeat itself.

use super::compute::{DEGRADED, find};
use crate::crd::{ConditionStatus, VideoCounterStatus};
use crate::reconcile::outcome::Problem;

/// An Event to publish about the Degraded condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DegradedEvent {
    /// Warning, with the problem's reason and message.
    Degraded(Problem),
    /// Normal `Recovered`, naming the reason it was degraded for.
    Recovered { was: String },
}

/// The Event for a move from `previous` to `problem` (`None`: healthy).
pub fn degraded_event(
    previous: Option<&VideoCounterStatus>,
    problem: Option<&Problem>,
) -> Option<DegradedEvent> {
    let was_degraded = previous
        .and_then(|s| find(s, DEGRADED))
        .filter(|c| c.status == ConditionStatus::True);
    match (problem, was_degraded) {
        (Some(p), Some(c)) if c.reason == p.reason && c.message == p.message => None,
        (Some(p), _) => Some(DegradedEvent::Degraded(p.clone())),
        (None, Some(c)) => Some(DegradedEvent::Recovered {
            was: c.reason.clone(),
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Condition;

    fn status(degraded: Option<(&str, &str)>) -> VideoCounterStatus {
        let (status, reason, message) = match degraded {
            Some((r, m)) => (ConditionStatus::True, r, m),
            None => (ConditionStatus::False, "Healthy", ""),
        };
        VideoCounterStatus {
            conditions: vec![Condition {
                type_: DEGRADED.into(),
                status,
                observed_generation: Some(1),
                last_transition_time: "2025-01-01T00:00:00Z".into(),
                reason: reason.into(),
                message: message.into(),
            }],
            ..VideoCounterStatus::default()
        }
    }

    #[test]
    fn becoming_degraded_warns_once() {
        let down = Problem::new("KafkaUnavailable", "Kafka at k:9092 is unreachable");
        assert_eq!(
            degraded_event(Some(&status(None)), Some(&down)),
            Some(DegradedEvent::Degraded(down.clone()))
        );
        assert_eq!(
            degraded_event(None, Some(&down)),
            Some(DegradedEvent::Degraded(down.clone()))
        );
        let same = status(Some(("KafkaUnavailable", "Kafka at k:9092 is unreachable")));
        assert_eq!(degraded_event(Some(&same), Some(&down)), None);
    }

    #[test]
    fn another_problem_or_another_message_warns_again() {
        let before = status(Some(("KafkaUnavailable", "Kafka at k:9092 is unreachable")));
        let secret = Problem::new("SecretNotFound", "no Secret");
        assert_eq!(
            degraded_event(Some(&before), Some(&secret)),
            Some(DegradedEvent::Degraded(secret))
        );
        let other_pod = Problem::new("KafkaUnavailable", "Kafka at k:9093 is unreachable");
        assert!(degraded_event(Some(&before), Some(&other_pod)).is_some());
    }

    #[test]
    fn recovering_is_said_once() {
        let before = status(Some(("CrashLoopBackOff", "1 worker pod cannot start")));
        assert_eq!(
            degraded_event(Some(&before), None),
            Some(DegradedEvent::Recovered {
                was: "CrashLoopBackOff".into()
            })
        );
        assert_eq!(degraded_event(Some(&status(None)), None), None);
        assert_eq!(degraded_event(None, None), None);
    }
}
