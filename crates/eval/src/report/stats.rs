//! The statistics of a report: means, and a 95% confidence interval over repeats (Student's t).

use serde::{Deserialize, Serialize};

/// A mean with its 95% confidence interval (none from fewer than two samples).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    /// The samples it is from (one per repeat).
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// Two-sided 95% critical values of Student's t for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

fn t95(df: usize) -> f64 {
    T95.get(df.saturating_sub(1)).copied().unwrap_or(1.96)
}

/// The mean of `samples`, or `None` when there are none.
pub fn mean(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    #[expect(clippy::cast_precision_loss, reason = "a few samples")]
    let n = samples.len() as f64;
    Some(samples.iter().sum::<f64>() / n)
}

/// The mean of `samples` with its 95% interval; `None` when there are no samples.
pub fn estimate(samples: &[f64]) -> Option<Estimate> {
    let m = mean(samples)?;
    let n = samples.len();
    if n < 2 {
        return Some(Estimate {
            mean: m,
            n,
            low: None,
            high: None,
        });
    }
    #[expect(clippy::cast_precision_loss, reason = "a few samples")]
    let nf = n as f64;
    let var = samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (nf - 1.0);
    let half = t95(n - 1) * (var / nf).sqrt();
    Some(Estimate {
        mean: m,
        n,
        low: Some(m - half),
        high: Some(m + half),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_students_t() {
        assert!(estimate(&[]).is_none());
        let one = estimate(&[0.5]).unwrap();
        assert_eq!((one.mean, one.low, one.high), (0.5, None, None));
        // mean 2, sd 1, n 3: half width 4.303 / sqrt(3).
        let e = estimate(&[1.0, 2.0, 3.0]).unwrap();
        let half = 4.303 / 3f64.sqrt();
        assert!((e.low.unwrap() - (2.0 - half)).abs() < 1e-9);
        assert!((e.high.unwrap() - (2.0 + half)).abs() < 1e-9);
    }
}
