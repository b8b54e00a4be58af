//! Listener subscriptions (`Interest`): a listener hears exactly the classes it asked for, and
//! a call's outcome only after its `BeforeCall`.

use std::sync::Mutex;

use atomic_breaker::{
    CircuitBreaker, Config, Event, EventKind, EventRecord, Interest, ManualClock, State,
};
use core::time::Duration;

static STATE_LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());
static CALL_LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());
static ALL_LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());

fn state_listener(e: &Event) {
    STATE_LOG.lock().unwrap().push(EventRecord::new(e));
}
fn call_listener(e: &Event) {
    CALL_LOG.lock().unwrap().push(EventRecord::new(e));
}
fn all_listener(e: &Event) {
    ALL_LOG.lock().unwrap().push(EventRecord::new(e));
}

fn take(log: &Mutex<Vec<EventRecord>>) -> Vec<EventKind<'static>> {
    let log = std::mem::take(&mut *log.lock().unwrap());
    log.iter().map(|r| r.event().kind).collect()
}

#[test]
fn each_listener_hears_only_its_classes() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_, 4>::new(
        "sub",
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_secs(1)),
        &clock,
    )
    .with_listener_for(
        Interest::STATE_CHANGES | Interest::REJECTIONS,
        state_listener,
    )
    .with_listener(all_listener);
    b.add_listener_for(Interest::CALLS, call_listener).unwrap();

    assert!(b.call(|| Ok::<_, ()>(1)).is_ok());
    let _ = b.call(|| Err::<(), _>(()));
    assert!(b.call(|| Ok::<_, ()>(1)).is_err()); // rejected

    let trip = EventKind::StateChange {
        from: State::Closed,
        to: State::Open,
        failures: 1,
        retry_after: Some(Duration::from_secs(1)),
    };
    let failure = EventKind::Failure {
        failures: 1,
        error: None,
    };
    let rejected = EventKind::Rejected {
        state: State::Open,
        retry_after: Some(Duration::from_secs(1)),
    };
    assert_eq!(take(&STATE_LOG), [trip, rejected]);
    assert_eq!(
        take(&CALL_LOG),
        [
            EventKind::BeforeCall,
            EventKind::Success { failures: 0 },
            EventKind::BeforeCall,
            failure
        ]
    );
    assert_eq!(
        take(&ALL_LOG),
        [
            EventKind::BeforeCall,
            EventKind::Success { failures: 0 },
            EventKind::BeforeCall,
            failure,
            trip,
            rejected
        ]
    );
}

#[test]
fn interest_sets_combine() {
    let s = Interest::STATE_CHANGES | Interest::REJECTIONS;
    assert!(s.contains(Interest::STATE_CHANGES));
    assert!(s.contains(Interest::REJECTIONS));
    assert!(!s.contains(Interest::CALLS));
    assert_eq!(s | Interest::CALLS, Interest::ALL);
    assert!(Interest::ALL.contains(s));
}
