//! Criterion benches for the retry scheduler (`queue::schedule`, STYLE.md rule 24).
//!
//! * `schedule/arrive_deliver/N`: N messages (2 recipients, 2 domains each) arrive, every
//!   job is taken with `next_due` and reported `Delivered`: the steady-state cost of the
//!   scheduler per message when nothing is deferred. Throughput = messages.
//! * `schedule/deferred_backlog`: with 10,000 messages deferred (timers pending), the cost
//!   of one arrival + delivery of a fresh message: arrivals must not scan the backlog.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailroot::config::{Config, SystemDefaults};
use mailroot::queue::schedule::{Action, Outcome, ScheduleConfig, Scheduler};
use mailroot::spool::QueueId;

const DOMAINS: [&str; 8] = [
    "a.example",
    "b.example",
    "c.example",
    "d.example",
    "e.example",
    "f.example",
    "g.example",
    "h.example",
];

fn config() -> ScheduleConfig {
    let sys = SystemDefaults { hostname: "bench.example".into(), cores: 2 };
    let mut d = Config::embedded_default(&sys).delivery;
    // No per-domain cap in the way of the measurement.
    d.max_connections_per_domain = 1_000_000;
    ScheduleConfig::from_delivery(&d)
}

/// Arrive `n` messages at `now`, take every due job, report every recipient.
fn arrive_and_deliver(s: &mut Scheduler, first_id: u64, n: u64, now: Instant) {
    for k in 0..n {
        let d1 = DOMAINS[(k % 8) as usize];
        let d2 = DOMAINS[((k + 3) % 8) as usize];
        s.arrive(QueueId(first_id + k), &[(0, d1), (1, d2)], now).expect("fresh id");
    }
    while let Some(action) = s.next_due(now) {
        if let Action::Deliver(job) = action {
            for r in job.rcpts {
                let _ = s.result(job.id, r, Outcome::Delivered, now);
            }
        }
    }
}

fn bench_arrive_deliver(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule/arrive_deliver");
    for n in [1u64, 64, 1024] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut s = Scheduler::new(config());
            let now = Instant::now();
            let mut next = 1u64;
            b.iter(|| {
                arrive_and_deliver(&mut s, next, n, now);
                next += n;
                black_box(s.len())
            });
        });
    }
    g.finish();
}

fn bench_deferred_backlog(c: &mut Criterion) {
    const BACKLOG: u64 = 10_000;
    let mut s = Scheduler::new(config());
    let now = Instant::now();
    for k in 0..BACKLOG {
        s.arrive(QueueId(k + 1), &[(0, DOMAINS[(k % 8) as usize])], now).expect("fresh id");
    }
    // Defer the whole backlog (4xx for the recipient, destination up).
    while let Some(action) = s.next_due(now) {
        if let Action::Deliver(job) = action {
            for r in job.rcpts {
                let o = Outcome::Deferred { reason: "451 4.7.1 later".into(), dest_down: false };
                let _ = s.result(job.id, r, o, now);
            }
        }
    }
    let later = now + Duration::from_secs(1);
    let mut next = BACKLOG + 1;
    c.bench_function("schedule/deferred_backlog", |b| {
        b.iter(|| {
            arrive_and_deliver(&mut s, next, 1, later);
            next += 1;
            black_box(s.len())
        });
    });
}

criterion_group!(benches, bench_arrive_deliver, bench_deferred_backlog);
criterion_main!(benches);
