//! The noise test of `loadmon cmp`: a two-sided Mann-Whitney U test (normal approximation,
//! ties corrected, continuity corrected) on two sets of per-interval samples.

/// The complementary error function (Numerical Recipes' `erfcc`, relative error under
/// 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Ranks of `all` (1-based, ties given their mean rank) and the tie correction sum
/// Σ(t³ − t) over groups of ties.
fn ranks(all: &[(f64, bool)]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|a, b| all[*a].0.total_cmp(&all[*b].0));
    let mut rank = vec![0.0; all.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && all[order[j + 1]].0 == all[order[i]].0 {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            rank[*k] = mean;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    (rank, ties)
}

/// The two-sided p-value of a Mann-Whitney U test of `a` against `b` (non-finite samples
/// left out); `None` when either side is empty. 1.0 when every sample is equal.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let all: Vec<(f64, bool)> = a
        .iter()
        .map(|x| (*x, true))
        .chain(b.iter().map(|x| (*x, false)))
        .filter(|(x, _)| x.is_finite())
        .collect();
    let n1 = all.iter().filter(|(_, s)| *s).count() as f64;
    let n2 = all.len() as f64 - n1;
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let (rank, ties) = ranks(&all);
    let r1: f64 = all
        .iter()
        .zip(&rank)
        .filter(|((_, s), _)| *s)
        .map(|(_, r)| r)
        .sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let d = (u1 - n1 * n2 / 2.0).abs() - 0.5;
    let z = d.max(0.0) / var.sqrt();
    Some(erfc(z / std::f64::consts::SQRT_2).min(1.0))
}

/// The median of `xs` (finite values; `None` when there are none).
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        assert!((erfc(2.0) - 0.004_677_735).abs() < 1e-7);
    }

    #[test]
    fn separated_samples_are_significant_and_mixed_ones_are_not() {
        let low: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i)).collect();
        let high: Vec<f64> = (0..20).map(|i| 200.0 + f64::from(i)).collect();
        let p = mann_whitney_p(&low, &high).unwrap();
        assert!(p < 1e-6, "{p}");
        let evens: Vec<f64> = (0..20).map(|i| f64::from(2 * i)).collect();
        let odds: Vec<f64> = (0..20).map(|i| f64::from(2 * i + 1)).collect();
        let p = mann_whitney_p(&evens, &odds).unwrap();
        assert!(p > 0.5, "{p}");
        assert_eq!(mann_whitney_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(mann_whitney_p(&[], &[1.0]), None);
    }

    #[test]
    fn the_p_value_matches_a_textbook_example() {
        // n1 = n2 = 5, U = 5 → z = (|5 − 12.5| − 0.5) / sqrt(25·11/12) = 1.462, p = 0.1437.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 5.0, 9.0], &[4.0, 6.0, 7.0, 8.0, 10.0]).unwrap();
        assert!((p - 0.1437).abs() < 0.001, "{p}");
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
