//! Connections: what each one is doing, its timeouts, and the cap.
//!
//! A connection is in one of three [`Phase`]s, seen from its socket:
//! **reading** a request's headers (from the first byte, or from the accept
//! for a new connection), **busy** answering (from the request to the last
//! byte of the response handed to the kernel), or **idle** between requests.
//! Each phase has its timeout ([`Timeouts`]), as Go's `http.Server` has
//! `ReadHeaderTimeout`, `WriteTimeout` and `IdleTimeout`. hyper's own header
//! timeout is not used: it also runs while a keep-alive connection is idle,
//! which closed Prometheus' connection between every two scrapes.
//!
//! At the cap ([`Registry::make_room`]), an idle connection is evicted for a
//! new one, the oldest first, then one still reading its headers; only busy
//! connections can keep a new client out. So idle keep-alive connections,
//! however many a client opens, never lock out a probe or a scrape.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::stats::{Dropped, Stats};

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Receiving a request's headers.
    Reading = 0,
    /// Answering a request: from its headers to the response's last byte.
    Busy = 1,
    /// Between requests, kept alive.
    Idle = 2,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Reading,
            1 => Phase::Busy,
            _ => Phase::Idle,
        }
    }
}

/// How long each phase may last.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// [`Phase::Reading`]: a client's time to send a request's headers.
    pub header: Duration,
    /// [`Phase::Busy`]: a client's time to take the whole response.
    pub write: Duration,
    /// [`Phase::Idle`]: how long a kept-alive connection may wait for its
    /// next request.
    pub idle: Duration,
}

impl Timeouts {
    fn of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Reading => self.header,
            Phase::Busy => self.write,
            Phase::Idle => self.idle,
        }
    }
}

/// One connection's phase and when it began, as milliseconds on the
/// server's [`Clock`]. Written by the connection's task, read by the
/// accept loop.
#[derive(Debug)]
pub struct State {
    phase: AtomicU8,
    since: AtomicU64,
    /// A response was handed to hyper: the next flush of everything it
    /// buffered ends [`Phase::Busy`].
    responded: AtomicU8,
    /// Bytes came while busy (the start of a pipelined request): the flush
    /// ends in [`Phase::Reading`], not idle.
    read_while_busy: AtomicU8,
    clock: Clock,
}

impl State {
    fn new(clock: Clock) -> State {
        // The first request's headers are timed from the accept.
        State {
            phase: AtomicU8::new(Phase::Reading as u8),
            since: AtomicU64::new(clock.now()),
            responded: AtomicU8::new(0),
            read_while_busy: AtomicU8::new(0),
            clock,
        }
    }

    fn set(&self, phase: Phase) {
        self.since.store(self.clock.now(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The phase and since when (milliseconds on the clock).
    fn get(&self) -> (Phase, u64) {
        (
            Phase::from_u8(self.phase.load(Ordering::Relaxed)),
            self.since.load(Ordering::Relaxed),
        )
    }

    /// A request's headers are in: the connection is busy until its
    /// response is written.
    pub fn begin_request(&self) {
        self.responded.store(0, Ordering::Relaxed);
        self.read_while_busy.store(0, Ordering::Relaxed);
        self.set(Phase::Busy);
    }

    /// The response is built and handed to hyper.
    pub fn end_request(&self) {
        self.responded.store(1, Ordering::Relaxed);
    }

    fn on_read(&self, n: usize) {
        if n == 0 {
            return;
        }
        match self.get().0 {
            Phase::Idle => self.set(Phase::Reading),
            Phase::Busy => self.read_while_busy.store(1, Ordering::Relaxed),
            Phase::Reading => {}
        }
    }

    fn on_flushed(&self) {
        if self.responded.swap(0, Ordering::Relaxed) == 1 {
            let pipelined = self.read_while_busy.swap(0, Ordering::Relaxed) == 1;
            self.set(if pipelined {
                Phase::Reading
            } else {
                Phase::Idle
            });
        }
    }
}

/// The reason for closing a connection whose `phase` lasted too long.
fn timeout(phase: Phase) -> Dropped {
    match phase {
        Phase::Reading => Dropped::HeaderTimeout,
        Phase::Busy => Dropped::WriteTimeout,
        Phase::Idle => Dropped::IdleTimeout,
    }
}

/// Milliseconds since the server started, on tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        later(self.0, Duration::from_millis(ms))
    }
}

/// A socket that tells its connection's [`State`] what it sees: the first
/// byte of a request, and the moment hyper has handed the kernel every byte
/// of a response (hyper flushes the socket only once its own buffer is
/// empty).
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> Tracked<S> {
    /// `inner`, reporting to `state`.
    pub fn new(inner: S, state: Arc<State>) -> Self {
        Tracked { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.state.on_read(buf.filled().len() - before);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.state.on_flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `at + d`, or a year after `at` where that would overflow (a timeout of
/// `u64::MAX` seconds is a timeout that never comes, not a panic).
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// Resolves when the connection's current phase has lasted longer than its
/// timeout, with the reason. The connection's task polls it after the
/// connection itself (a `biased` select), at every wake-up, so it sees every
/// change of phase the connection made.
#[derive(Debug)]
pub struct Watchdog {
    state: Arc<State>,
    timeouts: Timeouts,
    sleep: Pin<Box<Sleep>>,
    deadline: Instant,
}

impl Watchdog {
    /// A watchdog over `state`.
    pub fn new(state: Arc<State>, timeouts: Timeouts) -> Watchdog {
        let deadline = later(Instant::now(), timeouts.header);
        Watchdog {
            state,
            timeouts,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            deadline,
        }
    }
}

impl Future for Watchdog {
    type Output = Dropped;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Dropped> {
        loop {
            let (phase, since) = self.state.get();
            let deadline = later(self.state.clock.at(since), self.timeouts.of(phase));
            if deadline <= Instant::now() {
                return Poll::Ready(timeout(phase));
            }
            if deadline != self.deadline {
                self.deadline = deadline;
                self.sleep.as_mut().reset(deadline);
            }
            // Fired: look again, the phase may have changed meanwhile.
            ready!(self.sleep.as_mut().poll(cx));
        }
    }
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Entry {
    id: u64,
    state: Arc<State>,
    /// Sent to evict the connection; taken once sent.
    evict: Option<oneshot::Sender<()>>,
}

/// The open connections, for the cap.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    stats: Arc<Stats>,
    clock: Clock,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    conns: Vec<Entry>,
}

/// A connection's place in the [`Registry`]. Dropping it removes the
/// connection from the registry.
#[derive(Debug)]
pub struct Place {
    id: u64,
    /// The connection's phase, shared with its socket and its service.
    pub state: Arc<State>,
    registry: Arc<Registry>,
}

/// Resolves when the accept loop evicts the connection.
pub type Evicted = oneshot::Receiver<()>;

/// What [`Registry::make_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// There was room under the cap.
    Free,
    /// A connection was told to go: let its task run to close it.
    Evicted,
    /// Every connection is busy: the new one is refused (and counted).
    Full,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(i) = inner.conns.iter().position(|e| e.id == self.id) {
            inner.conns.swap_remove(i);
        }
        self.registry.stats.closed();
    }
}

impl Place {
    /// Counts the connection as closed by the exporter for `why`.
    pub fn dropped(&self, why: Dropped) {
        self.registry.stats.dropped(why);
    }
}

impl Registry {
    /// An empty registry counting into `stats`.
    pub fn new(stats: Arc<Stats>) -> Arc<Registry> {
        Arc::new(Registry {
            inner: Mutex::new(Inner::default()),
            stats,
            clock: Clock::start(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open and not told to go.
    fn live(inner: &Inner) -> usize {
        inner.conns.iter().filter(|e| e.evict.is_some()).count()
    }

    /// Makes room for one more connection under `cap`: evicts the idle
    /// connection idle the longest, else the one reading its headers the
    /// longest. [`Room::Full`] when every connection is busy (the new one is
    /// then refused, and counted).
    pub fn make_room(&self, cap: usize) -> Room {
        let mut inner = self.lock();
        if Self::live(&inner) < cap {
            return Room::Free;
        }
        let victim = inner
            .conns
            .iter_mut()
            .filter(|e| e.evict.is_some())
            .filter_map(|e| {
                let (phase, since) = e.state.get();
                let rank = match phase {
                    Phase::Idle => 0,
                    Phase::Reading => 1,
                    Phase::Busy => return None,
                };
                Some(((rank, since), e))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, e)| e);
        match victim.and_then(|e| e.evict.take()) {
            Some(tx) => {
                // The connection's task drops the socket when it next runs.
                let _ = tx.send(());
                Room::Evicted
            }
            None => {
                self.stats.dropped(Dropped::Refused);
                Room::Full
            }
        }
    }

    /// Registers a new connection.
    pub fn enter(self: &Arc<Self>) -> (Place, Evicted) {
        let (tx, rx) = oneshot::channel();
        let state = Arc::new(State::new(self.clock));
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        inner.conns.push(Entry {
            id,
            state: state.clone(),
            evict: Some(tx),
        });
        drop(inner);
        self.stats.opened();
        let place = Place {
            id,
            state,
            registry: self.clone(),
        };
        (place, rx)
    }

    /// Refusals so far.
    pub fn refused(&self) -> u64 {
        self.stats.dropped_for(Dropped::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Arc<Registry> {
        Registry::new(Arc::new(Stats::default()))
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn at_the_cap_the_oldest_idle_goes_first_then_the_oldest_reading() {
        let reg = registry();
        let (_reading_old, mut reading_old_evicted) = reg.enter();
        tokio::time::advance(Duration::from_millis(10)).await;
        let (idle_old, mut idle_old_evicted) = reg.enter();
        idle_old.state.begin_request();
        idle_old.state.end_request();
        idle_old.state.on_flushed();
        tokio::time::advance(Duration::from_millis(10)).await;
        let (idle_new, mut idle_new_evicted) = reg.enter();
        idle_new.state.begin_request();
        idle_new.state.end_request();
        idle_new.state.on_flushed();
        let (busy, mut busy_evicted) = reg.enter();
        busy.state.begin_request();
        assert_eq!(reg.make_room(5), Room::Free, "under the cap: nobody goes");
        assert!(idle_old_evicted.try_recv().is_err());

        assert_eq!(reg.make_room(4), Room::Evicted);
        assert!(idle_old_evicted.try_recv().is_ok(), "the oldest idle first");
        assert!(idle_new_evicted.try_recv().is_err());
        assert_eq!(reg.make_room(3), Room::Evicted);
        assert!(idle_new_evicted.try_recv().is_ok(), "then the next idle");
        assert_eq!(reg.make_room(2), Room::Evicted);
        assert!(
            reading_old_evicted.try_recv().is_ok(),
            "then one reading headers, though it is older than both"
        );
        assert_eq!(
            reg.make_room(1),
            Room::Full,
            "a busy connection is never evicted"
        );
        assert!(busy_evicted.try_recv().is_err());
        assert_eq!(reg.refused(), 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_watchdog_times_each_phase_from_its_start() {
        let reg = registry();
        let (place, _evicted) = reg.enter();
        let timeouts = Timeouts {
            header: Duration::from_secs(5),
            write: Duration::from_secs(30),
            idle: Duration::from_secs(600),
        };
        let mut dog = Box::pin(Watchdog::new(place.state.clone(), timeouts));
        let poll = |dog: &mut Pin<Box<Watchdog>>| {
            let waker = std::task::Waker::noop();
            dog.as_mut().poll(&mut Context::from_waker(waker))
        };
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(poll(&mut dog).is_pending());
        // Headers in, answered: idle from now, for ten minutes.
        place.state.begin_request();
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(
            poll(&mut dog).is_pending(),
            "busy, within the write timeout"
        );
        place.state.end_request();
        place.state.on_flushed();
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(poll(&mut dog).is_pending(), "idle, within the idle timeout");
        // A byte arrives: five seconds for the rest of the headers.
        place.state.on_read(1);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(poll(&mut dog).is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(poll(&mut dog), Poll::Ready(Dropped::HeaderTimeout));
    }

    #[test]
    fn a_flush_ends_busy_only_after_a_response() {
        let state = State::new(Clock::start());
        state.on_flushed();
        assert_eq!(state.get().0, Phase::Reading, "nothing answered yet");
        state.begin_request();
        state.on_flushed();
        assert_eq!(state.get().0, Phase::Busy, "the response is not built yet");
        state.end_request();
        state.on_flushed();
        assert_eq!(state.get().0, Phase::Idle);
        state.on_read(0);
        assert_eq!(state.get().0, Phase::Idle, "EOF is not a request");
        // The start of the next request arrives while answering this one.
        state.begin_request();
        state.on_read(10);
        state.end_request();
        state.on_flushed();
        assert_eq!(state.get().0, Phase::Reading, "its headers are timed");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_timeout_too_large_to_add_never_fires_and_never_panics() {
        let reg = registry();
        let (place, _evicted) = reg.enter();
        let forever = Duration::from_secs(u64::MAX);
        let timeouts = Timeouts {
            header: forever,
            write: forever,
            idle: forever,
        };
        let mut dog = Box::pin(Watchdog::new(place.state.clone(), timeouts));
        tokio::time::advance(Duration::from_secs(86_400)).await;
        let waker = std::task::Waker::noop();
        assert!(
            dog.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
    }
}
