//! One client's clock against the server's, from the `clock` exchange: NTP's on-wire
//! calculation and clock filter (RFC 5905, sections 8 and 10), with no I/O.
//!
//! The client asks (`clock:<c0>`, its wall clock, Unix µs), the server answers at once with
//! its own time (`clock:<c0>:<s1>`), and the client sends the round trip back
//! (`clock:<c0>:<s1>:<c2>`, `c2` when the answer came). From it: round trip `c2 - c0`, offset
//! `s1 - (c0 + c2) / 2` (how far the client's clock is behind the server's). The offset is exact
//! when both legs take as long and wrong by at most half the round trip otherwise, so the
//! sample with the smallest round trip is the best one: the filter keeps the last
//! [`SAMPLES_KEPT`] samples (memory O(1), and a client whose clock is stepped is followed
//! within that many samples) and takes the one with the smallest round trip among them.
//!
//! The server's times are its own timeline: its wall clock when it started plus its monotonic
//! time since (as every `t_s` of the report), so an offset places a client's times on the
//! axis of the series, whatever the server's wall clock does meanwhile.
//!
//! A sample counts only for an answer the server sent: it remembers the last
//! [`ANSWERS_KEPT`] answers it sent this client (`c0` and `s1`) and takes one sample per answer.
//! A forged, replayed or stale `s1` is ignored. (A client can still lie about its own stamps,
//! `c0` and `c2`; that misplaces only its own times, as a wrong clock would.)

/// Answers (`c0`, `s1`) remembered per client: a sample for an older one is ignored.
pub(crate) const ANSWERS_KEPT: usize = 4;

/// Samples the clock filter considers: the last 8, as NTP's.
pub(crate) const SAMPLES_KEPT: usize = 8;

/// The longest round trip taken, microseconds (10 s): a longer one says nothing useful.
pub(crate) const MAX_RTT_US: u64 = 10_000_000;

/// The reason of a sample whose answer the server did not send (or no longer remembers).
pub(crate) const NOT_ANSWERED: &str =
    "no answer with this c0 and s1 was sent to this client recently (forged, replayed or stale)";

/// The reason of a sample whose round trip is negative or above [`MAX_RTT_US`].
pub(crate) const ABSURD_RTT: &str = "its round trip (c2 - c0) is negative or longer than 10 s";

/// One round trip of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockSample {
    /// `c2 - c0`, microseconds.
    pub rtt_us: u64,
    /// Twice the offset, `2 s1 - c0 - c2`, microseconds (twice: exact in integers).
    pub offset2_us: i64,
}

impl ClockSample {
    /// How far the client's clock is behind the server's, milliseconds.
    pub(crate) fn offset_ms(self) -> f64 {
        self.offset2_us as f64 / 2000.0
    }

    /// The round trip, milliseconds.
    pub(crate) fn rtt_ms(self) -> f64 {
        self.rtt_us as f64 / 1000.0
    }
}

/// One client's clock exchange: the answers sent and the samples taken, bounded.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClockFilter {
    /// The last answers sent, `(c0, s1)`; a slot is emptied when its sample is taken.
    answers: [Option<(u64, u64)>; ANSWERS_KEPT],
    /// Where the next answer goes.
    next_answer: usize,
    /// The last samples taken.
    samples: [Option<ClockSample>; SAMPLES_KEPT],
    /// Where the next sample goes.
    next_sample: usize,
    /// Whether the offset above the warning threshold was logged (once per client).
    pub warned: bool,
}

impl ClockFilter {
    /// The server answered `c0_us` with `s1_us`.
    pub(crate) fn answered(&mut self, c0_us: u64, s1_us: u64) {
        self.answers[self.next_answer] = Some((c0_us, s1_us));
        self.next_answer = (self.next_answer + 1) % ANSWERS_KEPT;
    }

    /// Takes the sample `c0`, `s1`, `c2` (µs) if the server sent that answer and has not taken
    /// a sample for it; returns the best sample then (the smallest round trip of the last
    /// [`SAMPLES_KEPT`]).
    ///
    /// # Errors
    /// [`NOT_ANSWERED`] or [`ABSURD_RTT`]: the sample is ignored (an answer is used up either
    /// way).
    pub(crate) fn take(
        &mut self,
        c0_us: u64,
        s1_us: u64,
        c2_us: u64,
    ) -> Result<ClockSample, &'static str> {
        let slot = self
            .answers
            .iter_mut()
            .find(|a| **a == Some((c0_us, s1_us)))
            .ok_or(NOT_ANSWERED)?;
        *slot = None;
        let rtt_us = c2_us
            .checked_sub(c0_us)
            .filter(|r| *r <= MAX_RTT_US)
            .ok_or(ABSURD_RTT)?;
        // In i128, whatever the stamps (the protocol bounds them to 2^53, in range anyway).
        let offset2 = 2 * i128::from(s1_us) - i128::from(c0_us) - i128::from(c2_us);
        let offset2_us =
            i64::try_from(offset2).unwrap_or(if offset2 < 0 { i64::MIN } else { i64::MAX });
        self.samples[self.next_sample] = Some(ClockSample { rtt_us, offset2_us });
        self.next_sample = (self.next_sample + 1) % SAMPLES_KEPT;
        self.best().ok_or(ABSURD_RTT)
    }

    /// The sample with the smallest round trip among the last [`SAMPLES_KEPT`] (the newest
    /// of equals); `None` before the first.
    pub(crate) fn best(&self) -> Option<ClockSample> {
        // From the newest to the oldest, so that the newest of equal round trips wins.
        (1..=SAMPLES_KEPT)
            .filter_map(|k| self.samples[(self.next_sample + SAMPLES_KEPT - k) % SAMPLES_KEPT])
            .reduce(|best, s| if s.rtt_us < best.rtt_us { s } else { best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_round_trip_of_the_last_eight_wins() {
        let mut f = ClockFilter::default();
        assert_eq!(f.best(), None);
        // The client is 2.5 s behind: c = s - 2_500_000. A slow request leg (300 ms out, 10 ms
        // back) biases the offset by 145 ms; a quick symmetric one is exact.
        let skew = 2_500_000;
        let mut exchange = |s0: u64, out_us: u64, back_us: u64| {
            let c0 = s0 - skew;
            let s1 = s0 + out_us;
            f.answered(c0, s1);
            f.take(c0, s1, s1 + back_us - skew)
        };
        let slow = exchange(10_000_000, 300_000, 10_000).unwrap();
        assert_eq!(slow.rtt_us, 310_000);
        assert_eq!(slow.offset_ms(), 2_645.0);
        let quick = exchange(20_000_000, 5_000, 5_000).unwrap();
        assert_eq!((quick.rtt_ms(), quick.offset_ms()), (10.0, 2_500.0));
        let slower = exchange(30_000_000, 40_000, 2_000).unwrap();
        assert_eq!(slower, quick, "the best of the window");
        // Eight slower samples later the quick one has left the window.
        for i in 0..SAMPLES_KEPT as u64 {
            exchange(40_000_000 + i * 1_000_000, 20_000, 20_000).unwrap();
        }
        assert_eq!(
            f.best().map(|s| (s.rtt_us, s.offset_ms())),
            Some((40_000, 2_500.0))
        );
    }

    #[test]
    fn only_an_answer_sent_and_not_yet_taken_makes_a_sample() {
        let mut f = ClockFilter::default();
        assert_eq!(f.take(1, 2, 3), Err(NOT_ANSWERED), "nothing was sent");
        f.answered(100, 200);
        assert_eq!(f.take(100, 201, 300), Err(NOT_ANSWERED), "a forged s1");
        assert_eq!(f.take(99, 200, 300), Err(NOT_ANSWERED), "another c0");
        assert!(f.take(100, 200, 300).is_ok());
        assert_eq!(f.take(100, 200, 300), Err(NOT_ANSWERED), "replayed");
        // Negative and absurd round trips use the answer up and are ignored.
        f.answered(500, 600);
        assert_eq!(f.take(500, 600, 499), Err(ABSURD_RTT));
        assert_eq!(f.take(500, 600, 700), Err(NOT_ANSWERED));
        f.answered(500, 600);
        assert_eq!(f.take(500, 600, 500 + MAX_RTT_US + 1), Err(ABSURD_RTT));
        // Only the last ANSWERS_KEPT answers are remembered.
        for i in 0..=ANSWERS_KEPT as u64 {
            f.answered(1_000 + i, 2_000 + i);
        }
        assert_eq!(f.take(1_000, 2_000, 1_100), Err(NOT_ANSWERED), "too old");
        assert!(f.take(1_001, 2_001, 1_101).is_ok());
        assert_eq!(f.best().map(|s| s.rtt_us), Some(100));
    }
}
