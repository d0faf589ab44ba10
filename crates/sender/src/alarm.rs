//! Campaigns that fail in bursts pause themselves: a misconfigured relay or
//! refused credentials would otherwise burn through the whole list.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a campaign's failures call for a pause.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlarmSettings {
    /// Failures needed in the window; 0 turns the alarm off.
    pub(crate) failures: u32,
    /// Share of attempts in the window that must have failed.
    pub(crate) ratio: f64,
    pub(crate) window: Duration,
}

/// Recent attempts per campaign in this process.
#[derive(Debug)]
pub(crate) struct Alarm {
    settings: AlarmSettings,
    recent: Mutex<HashMap<i64, VecDeque<(Instant, bool)>>>,
}

impl Alarm {
    pub(crate) fn new(settings: AlarmSettings) -> Self {
        Self {
            settings,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Notes one attempt of `campaign`. Returns why the campaign must
    /// pause when this failure crossed the threshold.
    pub(crate) fn note(&self, campaign: i64, failed: bool, detail: &str) -> Option<String> {
        let s = self.settings;
        if s.failures == 0 {
            return None;
        }
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let attempts = recent.entry(campaign).or_default();
        attempts.push_back((now, failed));
        // Enough history to judge the ratio at the threshold, no more.
        let keep = usize::try_from(s.failures)
            .unwrap_or(usize::MAX)
            .saturating_mul(4);
        while attempts.len() > keep
            || attempts
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > s.window)
        {
            attempts.pop_front();
        }
        if !failed {
            return None;
        }
        let failures = attempts.iter().filter(|(_, f)| *f).count();
        let total = attempts.len();
        #[allow(clippy::cast_precision_loss)]
        let share = failures as f64 / total as f64;
        if failures < usize::try_from(s.failures).unwrap_or(usize::MAX) || share < s.ratio {
            return None;
        }
        attempts.clear();
        Some(format!(
            "paused automatically: {failures} of the last {total} attempts failed within {}s; last error: {detail}",
            s.window.as_secs()
        ))
    }

    /// Forgets campaigns no longer running.
    pub(crate) fn retain(&self, running: impl Fn(i64) -> bool) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.retain(|c, _| running(*c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(failures: u32) -> Alarm {
        Alarm::new(AlarmSettings {
            failures,
            ratio: 0.5,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn fires_once_failures_reach_the_count_and_the_share() {
        let a = alarm(3);
        assert_eq!(a.note(1, true, "550"), None);
        assert_eq!(a.note(1, true, "550"), None);
        let reason = a.note(1, true, "550 relay denied").unwrap();
        assert!(
            reason.contains("3 of the last 3 attempts failed"),
            "{reason}"
        );
        assert!(reason.contains("550 relay denied"));
        // The window starts over after firing.
        assert_eq!(a.note(1, true, "550"), None);
    }

    #[test]
    fn mostly_good_campaigns_and_other_campaigns_are_left_alone() {
        let a = alarm(3);
        for _ in 0..10 {
            a.note(1, false, "");
        }
        for _ in 0..3 {
            assert_eq!(a.note(1, true, "550"), None, "3 of 13 is under half");
        }
        assert_eq!(a.note(2, true, "x"), None);
        assert_eq!(alarm(0).note(3, true, "x"), None, "0 turns it off");
    }
}
