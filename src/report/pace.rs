//! The report's paced figures (clients with a rate; `pace` and `rlat` lines): a client's row
//! from its figures, the text report's pace line, and the warnings about clients that could
//! not keep pace.

use super::types::{ClientReport, Report, Total, MAX_CLOCK_WARNINGS};
use crate::latency::{FleetPace, LatencySummary, PaceFigures, PaceTotal, PACE_LAG_BOUND_MS};

impl ClientReport {
    /// The paced fields of the row from a client's figures `f`.
    pub fn set_pace(&mut self, f: &PaceFigures) {
        self.pace_target_mb_s = f.rate_mb_s;
        self.schedule_lag_ms = f.lag_now_ms;
        self.schedule_lag_p50_ms = f.lag.map(|l| l.p50_ms);
        self.schedule_lag_p99_ms = f.lag.map(|l| l.p99_ms);
        self.schedule_lag_max_ms = Some(f.lag_max_ms);
        self.response_p50_ms = f.response.map(|r| r.p50_ms);
        self.response_p90_ms = f.response.map(|r| r.p90_ms);
        self.response_p99_ms = f.response.map(|r| r.p99_ms);
        self.response_p999_ms = f.response.map(|r| r.p999_ms);
        self.response_max_ms = f.response.map(|r| r.max_ms);
        self.kept_pace = Some(f.kept_pace);
    }

    /// The warning about this client if it could not keep pace (`kept_pace` false).
    ///
    /// # Examples
    /// ```
    /// use loadmon::report::ClientReport;
    /// let c = ClientReport {
    ///     id: 101, kept_pace: Some(false), schedule_lag_max_ms: Some(2350.0),
    ///     pace_target_mb_s: Some(200.0), throughput_mb_s: 150.5, ..Default::default()
    /// };
    /// assert_eq!(
    ///     c.pace_warning().unwrap(),
    ///     "client 101 could not keep pace: its schedule lag reached 2.350 s (the bound is 1 s) \
    ///      at a target of 200.00 MB/s; it wrote 150.50 MB/s"
    /// );
    /// ```
    pub fn pace_warning(&self) -> Option<String> {
        if self.kept_pace != Some(false) {
            return None;
        }
        Some(format!(
            "client {} could not keep pace: its schedule lag reached {:.3} s (the bound is {} s) \
             at a target of {:.2} MB/s; it wrote {:.2} MB/s",
            self.id,
            self.schedule_lag_max_ms.unwrap_or(0.0) / 1000.0,
            PACE_LAG_BOUND_MS / 1000.0,
            self.pace_target_mb_s.unwrap_or(0.0),
            self.throughput_mb_s
        ))
    }
}

impl Report {
    /// The report's warnings: about clients' clocks ([`Report::clock_warnings`]), then about
    /// clients that could not keep pace ([`Report::pace_warnings`]).
    pub fn warnings_of(clients: &[ClientReport]) -> Vec<String> {
        let mut w = Report::clock_warnings(clients);
        w.extend(Report::pace_warnings(clients));
        w
    }

    /// The report's warnings about clients that could not keep pace: one per client, at most
    /// [`MAX_CLOCK_WARNINGS`], then one line counting the others.
    pub fn pace_warnings(clients: &[ClientReport]) -> Vec<String> {
        let mut warnings: Vec<String> = clients
            .iter()
            .filter_map(ClientReport::pace_warning)
            .collect();
        if warnings.len() > MAX_CLOCK_WARNINGS {
            let more = warnings.len() - MAX_CLOCK_WARNINGS;
            warnings.truncate(MAX_CLOCK_WARNINGS);
            warnings.push(format!(
                "{more} more client(s) could not keep pace (see each client's kept_pace and \
                 schedule_lag_max_ms)"
            ));
        }
        warnings
    }
}

impl Total {
    /// The paced clients' figures together: their rows' (targets, who could not keep pace,
    /// the largest lag) and the `fleet`'s merged start lags and response times; `None` when
    /// no client was paced.
    pub fn pace_of(clients: &[ClientReport], fleet: &FleetPace) -> Option<PaceTotal> {
        let paced: Vec<&ClientReport> = clients
            .iter()
            .filter(|c| c.pace_target_mb_s.is_some())
            .collect();
        if paced.is_empty() {
            return None;
        }
        Some(PaceTotal {
            clients: paced.len(),
            rate_mb_s: paced.iter().filter_map(|c| c.pace_target_mb_s).sum(),
            lag_bound_ms: PACE_LAG_BOUND_MS,
            behind: paced
                .iter()
                .filter(|c| c.kept_pace == Some(false))
                .map(|c| c.id)
                .collect(),
            lag_max_ms: paced
                .iter()
                .filter_map(|c| c.schedule_lag_max_ms)
                .fold(0.0, f64::max),
            schedule_lag: LatencySummary::of(fleet.lag.run()),
            response: LatencySummary::of(fleet.response.run()),
            schedule_lag_series: fleet.lag.points(),
            response_series: fleet.response.points(),
        })
    }

    /// The text report's line of the paced clients (`None` when none was paced): `Paced
    /// writes, 3 client(s) at 150.00 MB/s together: schedule lag p50 0.06 ms, p99 0.80 ms, max
    /// 2.10 ms; response time (from the schedule) p50 12.00 ms, p99 40.00 ms, max 45.00 ms; all
    /// kept pace (schedule lag within 1 s)`.
    pub fn pace_line(&self) -> Option<String> {
        let p = self.pace.as_ref()?;
        let mut s = format!(
            "Paced writes, {} client(s) at {:.2} MB/s together: ",
            p.clients, p.rate_mb_s
        );
        match p.schedule_lag {
            Some(l) => s.push_str(&format!(
                "schedule lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.p50_ms, l.p99_ms, p.lag_max_ms
            )),
            None => s.push_str(&format!("schedule lag max {:.2} ms", p.lag_max_ms)),
        }
        if let Some(r) = p.response {
            s.push_str(&format!(
                "; response time (from the schedule) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                r.p50_ms, r.p99_ms, r.max_ms
            ));
        }
        let bound_s = p.lag_bound_ms / 1000.0;
        if p.behind.is_empty() {
            s.push_str(&format!(
                "; all kept pace (schedule lag within {bound_s} s)"
            ));
        } else {
            s.push_str(&format!(
                "; {} could not keep pace (schedule lag over {bound_s} s)",
                p.behind.len()
            ));
        }
        Some(s)
    }
}
