//! Scheduler tests on a simulated clock over days of virtual time (STYLE rule 22):
//! backoff bounds, one delay DSN at 12 h, expiry at 2 d, fairness between incoming and
//! deferred work, dead-destination handling, flush.

use super::*;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The IIS defaults: 15, 30, 60, then every 240 minutes; delay DSN at 12 h; expire at 2 d.
pub(super) fn iis() -> ScheduleConfig {
    ScheduleConfig {
        retry: vec![15 * MIN, 30 * MIN, 60 * MIN, 240 * MIN],
        delay_notify: Some(12 * HOUR),
        expire: 48 * HOUR,
        dest_backoff_min: 15 * MIN,
        dest_backoff_max: 240 * MIN,
        max_jobs_per_dest: 20,
    }
}

fn id(n: u64) -> QueueId {
    QueueId(n)
}

/// What happened, with the virtual time since the start.
type Log = Vec<(Duration, Action)>;

/// Run the scheduler from `start` until no timer is due before `end`, answering each
/// recipient of each job with `respond` at once.
fn drive(
    s: &mut Scheduler,
    start: Instant,
    end: Instant,
    mut respond: impl FnMut(&Job, RcptIndex, Instant) -> Outcome,
) -> Log {
    let mut now = start;
    let mut log = Vec::new();
    loop {
        while let Some(a) = s.next_due(now) {
            if let Action::Deliver(job) = &a {
                for &r in &job.rcpts {
                    let o = respond(job, r, now);
                    s.result(job.id, r, o, now).unwrap();
                }
            }
            log.push((now - start, a));
        }
        match s.poll_timeout() {
            Some(t) if t <= end => {
                assert!(t >= now, "timers never go back in time");
                now = t;
            }
            _ => return log,
        }
    }
}

fn defer(reason: &str) -> Outcome {
    Outcome::Deferred { reason: reason.into(), dest_down: false }
}

fn down() -> Outcome {
    Outcome::Deferred { reason: "connection refused".into(), dest_down: true }
}

fn deliveries(log: &Log) -> Vec<Duration> {
    log.iter().filter(|(_, a)| matches!(a, Action::Deliver(_))).map(|(t, _)| *t).collect()
}

#[test]
fn always_deferred_follows_the_schedule_then_expires() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "example.com"), (1, "Example.COM.")], t0).unwrap();
    let log = drive(&mut s, t0, t0 + 72 * HOUR, |_, _, _| defer("451 4.3.0 try later"));
    // Attempt times: 0, +15m, +30m, +60m, then +240m each, while younger than 48 h.
    let mut want = vec![Duration::ZERO, 15 * MIN, 45 * MIN, 105 * MIN];
    while let Some(&last) = want.last() {
        let next = last + 240 * MIN;
        if next >= 48 * HOUR {
            break;
        }
        want.push(next);
    }
    assert_eq!(deliveries(&log), want);
    // Backoff bounds: every gap is one of the configured intervals.
    for w in want.windows(2) {
        assert!(w[1] - w[0] >= 15 * MIN && w[1] - w[0] <= 240 * MIN);
    }
    // Both recipients share one item: one job per attempt with both.
    let Some((_, Action::Deliver(j))) = log.first() else { panic!("{log:?}") };
    assert_eq!((j.rcpts.clone(), &*j.domain, j.attempt), (vec![0, 1], "example.com", 1));
    let dsns: Vec<&(Duration, Action)> =
        log.iter().filter(|(_, a)| matches!(a, Action::DelayDsn { .. })).collect();
    assert_eq!(dsns.len(), 1, "one delay DSN: {dsns:?}");
    assert_eq!(dsns[0].0, 12 * HOUR);
    let expires: Vec<&(Duration, Action)> =
        log.iter().filter(|(_, a)| matches!(a, Action::Expire { .. })).collect();
    assert_eq!(expires.len(), 1);
    assert_eq!(expires[0].0, 48 * HOUR);
    let Action::Expire { rcpts, message_done, .. } = &expires[0].1 else { unreachable!() };
    assert!(message_done);
    assert_eq!(rcpts.len(), 2);
    assert_eq!(rcpts[0].last_error.as_deref(), Some("451 4.3.0 try later"));
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None, "no timers left behind");
}

#[test]
fn last_interval_repeats_and_attempt_counts() {
    let cfg = ScheduleConfig { retry: vec![MIN, 2 * MIN], ..iis() };
    assert_eq!(cfg.retry_after(1), MIN);
    assert_eq!(cfg.retry_after(2), 2 * MIN);
    assert_eq!(cfg.retry_after(50), 2 * MIN);
    let t0 = Instant::now();
    let mut s = Scheduler::new(cfg);
    s.arrive(id(1), &[(0, "a.example")], t0).unwrap();
    let log = drive(&mut s, t0, t0 + 10 * MIN, |_, _, _| defer("451"));
    let attempts: Vec<u32> = log
        .iter()
        .filter_map(|(_, a)| if let Action::Deliver(j) = a { Some(j.attempt) } else { None })
        .collect();
    assert_eq!(deliveries(&log), [0, 1, 3, 5, 7, 9].map(|m| m * MIN));
    assert_eq!(attempts, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn delivered_before_delay_notify_sends_no_dsn() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "a.example"), (1, "b.example")], t0).unwrap();
    // a.example works at the 3rd attempt; b.example at once.
    let mut tries = 0;
    let log = drive(&mut s, t0, t0 + 72 * HOUR, |j, _, _| {
        if &*j.domain == "b.example" {
            return Outcome::Delivered;
        }
        tries += 1;
        if tries < 3 { defer("451") } else { Outcome::Delivered }
    });
    assert!(log.iter().all(|(_, a)| matches!(a, Action::Deliver(_))), "{log:?}");
    assert_eq!(deliveries(&log), [0, 0, 15, 45].map(|m| m * MIN));
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn delay_dsn_lists_only_deferred_recipients() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(7), &[(0, "ok.example"), (1, "slow.example"), (2, "bad.example")], t0).unwrap();
    let log = drive(&mut s, t0, t0 + 13 * HOUR, |j, _, _| match &*j.domain {
        "ok.example" => Outcome::Delivered,
        "bad.example" => Outcome::Failed,
        _ => defer("452 4.2.2 mailbox full"),
    });
    let dsns: Vec<&Action> =
        log.iter().map(|(_, a)| a).filter(|a| matches!(a, Action::DelayDsn { .. })).collect();
    let want = Action::DelayDsn {
        id: id(7),
        rcpts: vec![PendingRcpt {
            rcpt: 1,
            domain: Arc::from("slow.example"),
            last_error: Some("452 4.2.2 mailbox full".into()),
        }],
    };
    assert_eq!(dsns, [&want]);
    assert!(s.contains(id(7)));
}

#[test]
fn attempt_in_flight_at_expiry_expires_when_it_defers() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { retry: vec![HOUR], expire: 2 * HOUR, ..iis() };
    let mut s = Scheduler::new(cfg);
    s.arrive(id(1), &[(0, "a.example")], t0).unwrap();
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!() };
    // The attempt hangs past the expiry time.
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * HOUR));
    assert_eq!(s.next_due(t0 + 2 * HOUR), None, "nothing to expire while in flight");
    assert!(s.result(j.id, 0, defer("timeout"), t0 + 3 * HOUR).unwrap());
    let Some(Action::Expire { id: got, rcpts, message_done: true }) = s.next_due(t0 + 3 * HOUR)
    else {
        panic!()
    };
    assert_eq!((got, rcpts.len()), (id(1), 1));
    assert!(s.is_empty());
    // A delivery in flight at expiry still counts.
    s.arrive(id(2), &[(0, "a.example")], t0).unwrap();
    let Some(Action::Deliver(_)) = s.next_due(t0) else { panic!() };
    assert_eq!(s.next_due(t0 + 2 * HOUR), None);
    assert_eq!(s.result(id(2), 0, Outcome::Delivered, t0 + 3 * HOUR), Ok(true));
    assert_eq!(s.next_due(t0 + 3 * HOUR), None);
}

#[test]
fn recovered_old_message_expires_at_once() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    let now = t0 + 50 * HOUR;
    s.arrive_aged(id(1), &[(0, "a.example")], t0, now).unwrap();
    let log = drive(&mut s, now, now + HOUR, |_, _, _| defer("451"));
    // Delay notice was due long ago but nothing was deferred yet; expiry comes first
    // because its timer is clamped to `now` and items are ready, not in flight.
    assert!(log.iter().any(|(_, a)| matches!(a, Action::Expire { .. })), "{log:?}");
    assert!(s.is_empty());
}

#[test]
fn fairness_new_mail_is_not_starved_by_a_deferred_backlog() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    const BACKLOG: u64 = 10_000;
    for n in 0..BACKLOG {
        s.arrive(id(n), &[(0, "slow.example")], t0).unwrap();
    }
    // First attempts all defer: the whole backlog is due again at +15 min.
    while let Some(Action::Deliver(j)) = s.next_due(t0) {
        s.result(j.id, 0, defer("451"), t0).unwrap();
    }
    let t1 = t0 + 15 * MIN;
    assert_eq!(s.poll_timeout(), Some(t1));
    // New mail keeps arriving while the backlog is worked off, one per pick.
    let mut picks_until_new = Vec::new();
    let mut since = 0;
    for n in 0..1000 {
        s.arrive(id(BACKLOG + n), &[(0, "fast.example")], t1).unwrap();
        loop {
            let Some(Action::Deliver(j)) = s.next_due(t1) else { panic!() };
            since += 1;
            if j.id.0 >= BACKLOG {
                s.result(j.id, 0, Outcome::Delivered, t1).unwrap();
                picks_until_new.push(since);
                since = 0;
                break;
            }
            s.result(j.id, 0, defer("451"), t1).unwrap();
        }
    }
    assert!(picks_until_new.iter().all(|&p| p <= 2), "new mail waited: {picks_until_new:?}");
    // And the backlog was not starved either: it advanced by one per new message.
    let retried = BACKLOG as usize - s.deferred.len();
    assert!(retried >= 999, "deferred work advanced by {retried}");
}

#[test]
fn fairness_deferred_is_not_starved_by_a_flood_of_new_mail() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(0), &[(0, "slow.example")], t0).unwrap();
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!() };
    s.result(j.id, 0, defer("451"), t0).unwrap();
    let t1 = t0 + 15 * MIN;
    for n in 1..=5000 {
        s.arrive(id(n), &[(0, "fast.example")], t1).unwrap();
    }
    let mut pick = 0;
    loop {
        pick += 1;
        let Some(Action::Deliver(j)) = s.next_due(t1) else { panic!() };
        s.result(j.id, 0, Outcome::Delivered, t1).unwrap();
        if j.id == id(0) {
            break;
        }
    }
    assert!(pick <= 2, "retry waited {pick} picks behind new mail");
}

#[test]
fn dead_destination_holds_its_mail_and_probes() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    const N: u64 = 100;
    for n in 0..N {
        s.arrive(id(n), &[(0, "dead.example")], t0).unwrap();
    }
    s.arrive(id(N), &[(0, "alive.example")], t0).unwrap();
    let alive_at = t0 + 6 * HOUR;
    let mut attempts_dead = 0;
    let log = drive(&mut s, t0, t0 + 72 * HOUR, |j, _, now| {
        if &*j.domain == "alive.example" {
            return Outcome::Delivered;
        }
        attempts_dead += 1;
        if now < alive_at { down() } else { Outcome::Delivered }
    });
    // The first failure marks the domain dead, so the other 99 are held without an
    // attempt. Then one probe goes per backoff (15m, 30m, 60m, 120m, 240m, ... for 6 h),
    // and everything goes at once when a probe gets through: N deliveries plus a handful
    // of failed probes, instead of N × 5 failed attempts.
    assert!(attempts_dead >= N as usize, "every message delivered once: {attempts_dead}");
    let burnt = attempts_dead - N as usize;
    assert!(burnt <= 8, "attempts burnt while dead: {burnt}");
    assert!(s.is_empty(), "everything delivered: {} left", s.len());
    assert!(!s.is_dead("dead.example"));
    let last = log.last().map(|(t, _)| *t).unwrap();
    assert!(last < 6 * HOUR + 240 * MIN, "all delivered soon after revival: {last:?}");
    // Deliveries, and one notice that the destination answered again.
    let revived: Vec<&Action> =
        log.iter().map(|(_, a)| a).filter(|a| !matches!(a, Action::Deliver(_))).collect();
    assert_eq!(revived, [&Action::Revived { domain: "dead.example".into() }]);
}

#[test]
fn dead_destination_backoff_doubles_within_bounds() {
    let cfg = iis();
    let got: Vec<Duration> = (1..=8).map(|f| cfg.dest_backoff(f)).collect();
    let want = [15, 30, 60, 120, 240, 240, 240, 240].map(|m| m * MIN);
    assert_eq!(got, want);
    assert_eq!(cfg.dest_backoff(u32::MAX), 240 * MIN);
}

#[test]
fn rcpt_4xx_does_not_kill_a_destination() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "a.example"), (1, "a.example")], t0).unwrap();
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!() };
    s.result(j.id, 0, down(), t0).unwrap();
    s.result(j.id, 1, defer("452"), t0).unwrap();
    assert!(!s.is_dead("a.example"), "one recipient got an answer: the host is up");
    s.arrive(id(2), &[(0, "b.example")], t0).unwrap();
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!() };
    s.result(j.id, 0, down(), t0).unwrap();
    assert!(s.is_dead("b.example"));
}

#[test]
fn flush_retries_now() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "a.example"), (1, "b.example")], t0).unwrap();
    s.arrive(id(2), &[(0, "b.example")], t0).unwrap();
    while let Some(Action::Deliver(j)) = s.next_due(t0) {
        for r in j.rcpts {
            s.result(j.id, r, down(), t0).unwrap();
        }
    }
    let t1 = t0 + MIN;
    assert_eq!(s.next_due(t1), None);
    assert!(s.flush(id(1)));
    assert!(!s.flush(id(99)));
    let mut got: Vec<(QueueId, String)> = Vec::new();
    while let Some(Action::Deliver(j)) = s.next_due(t1) {
        got.push((j.id, j.domain.to_string()));
        s.result(j.id, j.rcpts[0], down(), t1).unwrap();
    }
    got.sort();
    assert_eq!(got, [(id(1), "a.example".into()), (id(1), "b.example".into())]);
    // flush_domain also forgets that the destination was dead.
    assert!(s.is_dead("b.example"));
    assert_eq!(s.flush_domain("B.Example."), 2);
    assert!(!s.is_dead("b.example"));
    let mut got = Vec::new();
    while let Some(Action::Deliver(j)) = s.next_due(t1) {
        got.push(j.id);
        s.result(j.id, j.rcpts[0], Outcome::Delivered, t1).unwrap();
    }
    got.sort();
    assert_eq!(got, [id(1), id(2)]);
    assert_eq!(s.flush_domain("unknown.example"), 0);
    assert_eq!(s.flush_all(), 1, "only a.example of message 1 is left");
}

#[test]
fn refused_calls() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    // (recipients, expected error) for arrive
    let cases: &[(&[(RcptIndex, &str)], ScheduleError)] = &[
        (&[], ScheduleError::BadRecipients(id(1))),
        (&[(0, "a"), (0, "b")], ScheduleError::BadRecipients(id(1))),
    ];
    for (rcpts, err) in cases {
        assert_eq!(s.arrive(id(1), rcpts, t0).as_ref(), Err(err));
    }
    s.arrive(id(1), &[(0, "a"), (3, "a")], t0).unwrap();
    assert_eq!(s.arrive(id(1), &[(0, "a")], t0), Err(ScheduleError::DuplicateMessage(id(1))));
    assert_eq!(
        s.result(id(9), 0, Outcome::Delivered, t0),
        Err(ScheduleError::UnknownMessage(id(9)))
    );
    assert_eq!(
        s.result(id(1), 0, Outcome::Delivered, t0),
        Err(ScheduleError::NotInFlight(id(1), 0))
    );
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!() };
    assert_eq!(j.rcpts, [0, 3]);
    assert_eq!(
        s.result(id(1), 5, Outcome::Delivered, t0),
        Err(ScheduleError::NotInFlight(id(1), 5))
    );
    assert_eq!(s.result(id(1), 0, Outcome::Delivered, t0), Ok(false));
    assert_eq!(
        s.result(id(1), 0, Outcome::Delivered, t0),
        Err(ScheduleError::NotInFlight(id(1), 0))
    );
    assert_eq!(s.result(id(1), 3, Outcome::Failed, t0), Ok(true));
    assert!(s.is_empty());
    assert_eq!(
        ScheduleError::NotInFlight(id(1), 3).to_string(),
        "message 0000000000000001 recipient 3 is not being delivered"
    );
}

#[test]
fn config_from_delivery() {
    let sys = crate::config::SystemDefaults { hostname: "h".into(), cores: 1 };
    let c = crate::config::Config::embedded_default(&sys);
    assert_eq!(ScheduleConfig::from_delivery(&c.delivery), iis());
    let mut d = c.delivery.clone();
    d.delay_notify_ms = 0;
    assert_eq!(ScheduleConfig::from_delivery(&d).delay_notify, None);
}

#[test]
fn per_destination_concurrency_limit() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(ScheduleConfig { max_jobs_per_dest: 3, ..iis() });
    for n in 0..10 {
        s.arrive(id(n), &[(0, "big.example")], t0).unwrap();
    }
    s.arrive(id(10), &[(0, "small.example")], t0).unwrap();
    let mut in_flight = Vec::new();
    while let Some(Action::Deliver(j)) = s.next_due(t0) {
        in_flight.push(j);
    }
    let domains: Vec<&str> = in_flight.iter().map(|j| &*j.domain).collect();
    assert_eq!(domains, ["big.example", "big.example", "big.example", "small.example"]);
    // Each finished job lets exactly one more go, in arrival order.
    let mut order = Vec::new();
    while let Some(j) = in_flight.pop() {
        s.result(j.id, 0, Outcome::Delivered, t0).unwrap();
        while let Some(Action::Deliver(next)) = s.next_due(t0) {
            order.push(next.id.0);
            in_flight.push(next);
        }
        assert!(in_flight.iter().filter(|j| &*j.domain == "big.example").count() <= 3);
    }
    assert_eq!(order, (3..10).collect::<Vec<u64>>());
    assert!(s.is_empty());
}

#[test]
fn status_for_queue_list() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "a.example"), (1, "b.example"), (2, "c.example")], t0).unwrap();
    assert_eq!(s.status(id(2)), None);
    let states = |s: &Scheduler| -> Vec<(RcptIndex, RcptState, u32)> {
        s.status(id(1)).unwrap().iter().map(|r| (r.rcpt, r.state, r.attempts)).collect()
    };
    assert_eq!(
        states(&s),
        [(0, RcptState::Ready, 0), (1, RcptState::Ready, 0), (2, RcptState::Ready, 0)]
    );
    let mut jobs = Vec::new();
    while let Some(Action::Deliver(j)) = s.next_due(t0) {
        jobs.push(j);
    }
    assert_eq!(
        states(&s),
        [(0, RcptState::Active, 0), (1, RcptState::Active, 0), (2, RcptState::Active, 0)]
    );
    s.result(id(1), 0, defer("451 greylisted"), t0).unwrap();
    s.result(id(1), 1, Outcome::Delivered, t0).unwrap();
    s.result(id(1), 2, down(), t0).unwrap();
    let st = s.status(id(1)).unwrap();
    assert_eq!(st.len(), 2);
    assert_eq!(
        (st[0].state, st[0].attempts),
        (RcptState::Waiting { next_try: Some(t0 + 15 * MIN) }, 1)
    );
    assert_eq!(st[0].last_error.as_deref(), Some("451 greylisted"));
    assert_eq!(&*st[1].domain, "c.example");
    // c.example is dead: a new message for it is held, not tried.
    s.arrive(id(2), &[(0, "c.example")], t0).unwrap();
    assert_eq!(s.next_due(t0), None);
    assert_eq!(s.status(id(2)).unwrap()[0].state, RcptState::Held);
}

/// A small deterministic PRNG (xorshift64*), so the simulation is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Three virtual days of random traffic: arrivals spread over the first day, random
/// outcomes, one domain down for the first 20 hours and one down for good. Checks the
/// invariants: every recipient ends exactly once (delivered, failed or expired), nobody is
/// tried twice at once, no delay DSN twice, expiry on time, attempts within the schedule.
#[test]
fn random_traffic_over_three_days_keeps_the_invariants() {
    const MESSAGES: u64 = 3000;
    const DOMAINS: [&str; 6] =
        ["a.example", "b.example", "c.example", "d.example", "flaky.example", "gone.example"];
    let t0 = Instant::now();
    let cfg = iis();
    let mut s = Scheduler::new(ScheduleConfig { max_jobs_per_dest: 5, ..cfg.clone() });
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Arrival times, sorted.
    let mut arrivals: Vec<(Duration, u64)> =
        (0..MESSAGES).map(|n| (Duration::from_secs(rng.below(86_400)), n)).collect();
    arrivals.sort();
    let mut rcpt_domain: HashMap<(u64, RcptIndex), &str> = HashMap::new();
    let mut arrived_at: HashMap<u64, Duration> = HashMap::new();
    let mut ended: HashMap<(u64, RcptIndex), &str> = HashMap::new();
    let mut attempts: HashMap<(u64, &str), u32> = HashMap::new();
    let mut dsn: HashSet<u64> = HashSet::new();
    let mut in_flight: Vec<Job> = Vec::new();
    let end = t0 + 72 * HOUR;
    let mut now = t0;
    let mut next_arrival = 0;
    loop {
        while next_arrival < arrivals.len() && t0 + arrivals[next_arrival].0 <= now {
            let n = arrivals[next_arrival].1;
            let count = 1 + rng.below(3) as RcptIndex;
            let rcpts: Vec<(RcptIndex, &str)> = (0..count)
                .map(|i| (i, DOMAINS[rng.below(DOMAINS.len() as u64) as usize]))
                .collect();
            for &(i, d) in &rcpts {
                rcpt_domain.insert((n, i), d);
            }
            arrived_at.insert(n, now - t0);
            s.arrive(id(n), &rcpts, now).unwrap();
            next_arrival += 1;
        }
        while let Some(a) = s.next_due(now) {
            match a {
                Action::Deliver(j) => {
                    assert!(!in_flight.iter().any(|f| f.id == j.id && f.domain == j.domain));
                    assert!(in_flight.iter().filter(|f| f.domain == j.domain).count() < 5);
                    *attempts
                        .entry((j.id.0, DOMAINS.iter().find(|d| **d == &*j.domain).unwrap()))
                        .or_default() += 1;
                    in_flight.push(j);
                }
                Action::DelayDsn { id: m, rcpts } => {
                    assert!(dsn.insert(m.0), "second delay DSN for {m}");
                    assert_eq!(now - t0 - arrived_at[&m.0], 12 * HOUR);
                    assert!(rcpts.iter().all(|r| !ended.contains_key(&(m.0, r.rcpt))));
                }
                Action::Expire { id: m, rcpts, .. } => {
                    let age = now - t0 - arrived_at[&m.0];
                    // On time, or when an attempt in flight at 48 h came back deferred
                    // (jobs here take a few simulated minutes).
                    assert!(age >= 48 * HOUR && age <= 48 * HOUR + HOUR, "expired at age {age:?}");
                    for r in rcpts {
                        assert!(ended.insert((m.0, r.rcpt), "expired").is_none());
                    }
                }
                Action::Wake { .. } | Action::Revived { .. } => {}
            }
        }
        // Answer about half of the jobs in flight each minute.
        let mut keep = Vec::new();
        for j in in_flight.drain(..) {
            if rng.below(2) == 0 {
                keep.push(j);
                continue;
            }
            for &r in &j.rcpts {
                let o = match (&*j.domain, rng.below(10)) {
                    ("gone.example", _) => down(),
                    ("flaky.example", _) if now < t0 + 20 * HOUR => down(),
                    (_, 0) => Outcome::Failed,
                    (_, 1..=3) => defer("451 try later"),
                    _ => Outcome::Delivered,
                };
                if matches!(o, Outcome::Delivered | Outcome::Failed) {
                    assert!(ended.insert((j.id.0, r), "final").is_none(), "{j:?} {r}");
                }
                s.result(j.id, r, o, now).unwrap();
            }
        }
        in_flight = keep;
        if now >= end {
            break;
        }
        now += MIN;
    }
    // Every recipient ended exactly once, and the queue is empty.
    assert_eq!(ended.len(), rcpt_domain.len());
    assert!(s.is_empty(), "{} messages left", s.len());
    assert!(
        ended
            .iter()
            .any(|((n, i), how)| *how == "expired" && rcpt_domain[&(*n, *i)] == "gone.example")
    );
    // No item was tried more often than the schedule allows in two days (15 slots).
    let max = attempts.values().copied().max().unwrap();
    assert!(max <= 15, "an item was tried {max} times");
    // The dead domain burnt few attempts: far fewer than one per message per retry slot.
    let gone: u32 =
        attempts.iter().filter(|((_, d), _)| *d == "gone.example").map(|(_, n)| n).sum();
    let gone_msgs = attempts.keys().filter(|(_, d)| *d == "gone.example").count() as u32;
    assert!(gone < 2 * gone_msgs, "gone.example: {gone} attempts for {gone_msgs} messages");
}

#[test]
fn remove_takes_a_message_out_until_it_arrives_again() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(iis());
    s.arrive(id(1), &[(0, "a.example"), (2, "b.example"), (1, "a.example")], t0).unwrap();
    s.arrive(id(2), &[(0, "a.example")], t0).unwrap();
    // Message 1 to a.example goes out first: in flight, it cannot be removed until it reports.
    let Some(Action::Deliver(j)) = s.next_due(t0) else { panic!("a job") };
    assert_eq!(j.id, id(1));
    assert_eq!(s.remove(id(1)), Err(ScheduleError::InFlight(id(1))));
    for &r in &j.rcpts {
        s.result(id(1), r, down(), t0).unwrap();
    }
    // Deferred (a.example dead, b.example waiting): removable, recipients in index order.
    let removed = s.remove(id(1)).unwrap();
    let got: Vec<(RcptIndex, &str)> = removed.iter().map(|(r, d)| (*r, &**d)).collect();
    assert_eq!(got, [(0, "a.example"), (1, "a.example"), (2, "b.example")]);
    assert!(!s.contains(id(1)));
    assert_eq!(s.remove(id(1)), Err(ScheduleError::UnknownMessage(id(1))));
    // Its timers and queue entries are stale now: over three days only message 2 and
    // nothing of message 1 comes out (no retry, no delay DSN, no expiry).
    let log = drive(&mut s, t0, t0 + 72 * HOUR, |_, _, _| Outcome::Delivered);
    assert!(
        log.iter().all(|(_, a)| match a {
            Action::Deliver(j) => j.id == id(2),
            Action::DelayDsn { id: m, .. } | Action::Expire { id: m, .. } => *m == id(2),
            Action::Wake { .. } | Action::Revived { .. } => true,
        }),
        "{log:?}"
    );
    assert!(s.is_empty());
    // Released: it arrives again and is tried at once.
    s.arrive(id(1), &[(0, "a.example")], t0 + 72 * HOUR).unwrap();
    assert!(s.flush(id(1)));
    let Some(Action::Deliver(j)) = s.next_due(t0 + 72 * HOUR) else { panic!("tried now") };
    assert_eq!((j.id, j.rcpts), (id(1), vec![0]));
}
