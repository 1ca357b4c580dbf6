//! The pump's flow rules, apart from the tasks that follow them: the connection's receive
//! window, how many batches JS may hold unacknowledged, when a backlog of received events
//! pauses the peer (the reader closes that window) and when it resumes, and when a sender
//! is told that its send buffer drained.

/// Bytes a peer may send on a connection beyond what was read (QUIC flow control): every
/// connection starts with it, and the reader opens a paused peer's window to it again.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;
/// Batches handed to JS and not yet acknowledged: two, so the next one is already
/// waiting in the JS queue while the current one is dispatched.
pub const BATCHES_WITH_JS: usize = 2;
/// Received bytes waiting for JS past which the peer is paused, and below which it resumes.
pub const PAUSE_BACKLOG: usize = 1024 * 1024;
pub const RESUME_BACKLOG: usize = 256 * 1024;

/// What to do with the connection's receive window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Close it: the peer may send at most what the window allowed already.
    Close,
    /// Open it again.
    Open,
}

/// The reader's side of the hand-over to JS: the batches JS holds, and whether the peer is
/// paused.
#[derive(Debug, Default)]
pub struct ReceiveFlow {
    with_js: usize,
    paused: bool,
}

impl ReceiveFlow {
    pub fn new() -> Self {
        Self::default()
    }

    /// JS finished with `n` batches (acknowledgements of more than it holds count as all).
    pub fn acked(&mut self, n: usize) {
        self.with_js -= n.min(self.with_js);
    }

    /// Whether another batch may go to JS now.
    pub fn may_hand_over(&self) -> bool {
        self.with_js < BATCHES_WITH_JS
    }

    /// A batch went to JS.
    pub fn handed_over(&mut self) {
        self.with_js += 1;
    }

    /// Whether the peer is paused (the window closed by this side).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// With `backlog` received bytes waiting for JS: whether the window changes. It closes
    /// past [`PAUSE_BACKLOG`] and opens below [`RESUME_BACKLOG`], and stays as it is between
    /// them, so that it does not flap.
    pub fn window(&mut self, backlog: usize) -> Option<Window> {
        if !self.paused && backlog > PAUSE_BACKLOG {
            self.paused = true;
            Some(Window::Close)
        } else if self.paused && backlog < RESUME_BACKLOG {
            self.paused = false;
            Some(Window::Open)
        } else {
            None
        }
    }
}

/// Whether a sender with `buffered` bytes waiting (of `max_buffered` allowed) should hear
/// when they have drained: past half the allowance.
pub fn wants_drain(buffered: usize, max_buffered: usize) -> bool {
    buffered > max_buffered / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_holds_at_most_two_batches_until_it_acknowledges() {
        let mut flow = ReceiveFlow::new();
        for _ in 0..BATCHES_WITH_JS {
            assert!(flow.may_hand_over());
            flow.handed_over();
        }
        assert!(!flow.may_hand_over());
        flow.acked(1);
        assert!(flow.may_hand_over());
        flow.handed_over();
        // An acknowledgement of more than JS holds frees what it holds, no more.
        flow.acked(5);
        for _ in 0..BATCHES_WITH_JS {
            flow.handed_over();
        }
        assert!(!flow.may_hand_over());
    }

    #[test]
    fn the_peer_pauses_past_the_high_mark_and_resumes_below_the_low_one() {
        let mut flow = ReceiveFlow::new();
        assert_eq!(flow.window(PAUSE_BACKLOG), None, "at the mark is not past it");
        assert_eq!(flow.window(PAUSE_BACKLOG + 1), Some(Window::Close));
        assert!(flow.paused());
        assert_eq!(flow.window(4 * PAUSE_BACKLOG), None, "closed once");
        // Between the marks nothing changes, in either state.
        assert_eq!(flow.window(RESUME_BACKLOG), None);
        assert_eq!(flow.window(RESUME_BACKLOG - 1), Some(Window::Open));
        assert!(!flow.paused());
        assert_eq!(flow.window(0), None, "opened once");
        assert_eq!(flow.window(PAUSE_BACKLOG), None);
    }

    #[test]
    fn a_drain_is_wanted_past_half_the_send_buffer() {
        assert!(!wants_drain(0, 1000));
        assert!(!wants_drain(500, 1000));
        assert!(wants_drain(501, 1000));
        assert!(wants_drain(2000, 1000));
    }
}
