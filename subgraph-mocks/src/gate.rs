//! A [`Gate`] holds requests until a number of them have arrived, across mocks: tests use
//! it to prove that a gateway sends requests in parallel without any timing threshold.
//! Give the same gate to three mocks with `parties = 3`: each mock's request waits until
//! all three have arrived. A gateway that sent them one after the other would leave the
//! first one waiting until the gate's (generous) timeout, and the mock then answers with
//! an error that says so.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::watch;

/// See the [module docs](self).
#[derive(Debug)]
pub struct Gate {
    parties: usize,
    arrived: AtomicUsize,
    open: watch::Sender<bool>,
    timeout: Duration,
}

impl Gate {
    /// A gate that opens once `parties` requests have arrived; a request waits at most
    /// `timeout` for that.
    pub fn new(parties: usize, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            parties,
            arrived: AtomicUsize::new(0),
            open: watch::Sender::new(false),
            timeout,
        })
    }

    /// Registers a request and waits until the gate is open: `true` when it opened, `false`
    /// when the timeout passed first. Once open, every request passes at once.
    pub async fn arrive(&self) -> bool {
        let n = self.arrived.fetch_add(1, SeqCst) + 1;
        if n >= self.parties {
            self.open.send_replace(true);
            return true;
        }
        let mut rx = self.open.subscribe();
        tokio::time::timeout(self.timeout, rx.wait_for(|open| *open))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// How many requests have arrived.
    pub fn arrived(&self) -> usize {
        self.arrived.load(SeqCst)
    }
}

/// The gate a mock currently applies (none by default).
#[derive(Debug, Default)]
pub(crate) struct GateSlot(Mutex<Option<Arc<Gate>>>);

impl GateSlot {
    pub fn set(&self, gate: Option<Arc<Gate>>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = gate;
        }
    }

    /// Waits at the gate if there is one; `false` if it timed out.
    pub async fn pass(&self) -> bool {
        let gate = self.0.lock().ok().and_then(|g| g.clone());
        match gate {
            Some(gate) => gate.arrive().await,
            None => true,
        }
    }
}
