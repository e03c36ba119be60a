//! Reading `/metrics` text as an operator's query would: one series' value, a sum over series, the
//! active conflicts.

/// The value of the series of `name` whose labels include every `label="value"` pair given.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series(text, name, labels).next()
}

/// The sum over every series of `name` whose labels include every pair given (0 when there is none).
pub fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text, name, labels).sum()
}

fn series<'a>(text: &'a str, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = f64> + 'a {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(move |l| {
        let (series, v) = l.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !(rest.is_empty() || rest.starts_with('{')) {
            return None;
        }
        labels.iter().all(|(k, val)| rest.contains(&format!("{k}=\"{val}\""))).then(|| v.parse().ok())?
    })
}

/// The `l2watch_conflict_active` series.
pub fn conflicts(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("l2watch_conflict_active{")).collect()
}
