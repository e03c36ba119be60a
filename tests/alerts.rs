//! The alert rules (deploy/alerts): promtool checks and unit-tests them, and every alert has a firing
//! test, a silent check and a runbook section, with the labels and annotations the README promises.

#[path = "support/repo.rs"]
mod repo;

use std::collections::{BTreeMap, BTreeSet};

use repo::{read, require_tool, root, run_check};
use serde::Deserialize;

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The parts of a `promtool test rules` file this test reads (serde skips the rest: input series...).
#[derive(Deserialize)]
struct TestFile {
    rule_files: Vec<String>,
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    exp_samples: Vec<serde::de::IgnoredAny>,
}

fn rules() -> RuleFile {
    let path = root().join("deploy/alerts/l2watch.rules.yml");
    serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn alerts(file: &RuleFile) -> Vec<&Rule> {
    file.groups.iter().flat_map(|g| &g.rules).filter(|r| r.alert.is_some()).collect()
}

/// The anchor GitHub gives a Markdown heading: lower case, spaces to hyphens, other punctuation dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    // CI installs Debian's prometheus package for promtool; without it this test must fail, not skip,
    // or the rules would go unchecked without anyone noticing.
    require_tool("promtool", "apt-get install -y prometheus");
    run_check("deploy/alerts/check.sh");
}

#[test]
fn every_alert_is_named_labelled_and_annotated() {
    let file = rules();
    let mut names = BTreeSet::new();
    for group in &file.groups {
        assert!(group.name.starts_with("l2watch"), "group {} is not named l2watch...", group.name);
        for rule in &group.rules {
            // The PrometheusRule is generated from this file alone: recording rules would be fine there,
            // but this test and the runbook only know alerts, so a record should come with both.
            assert!(rule.record.is_none(), "recording rule {:?}: extend tests/alerts.rs", rule.record);
        }
    }
    for rule in alerts(&file) {
        let name = rule.alert.as_deref().unwrap();
        assert!(names.insert(name), "{name} is defined twice");
        assert!(
            name.starts_with("L2watch") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}: alert names are CamelCase with the L2watch prefix"
        );
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?} is not critical, warning or info"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule.annotations.get(key).is_some_and(|v| !v.trim().is_empty()),
                "{name}: annotation {key} is missing"
            );
        }
    }
    assert!(names.len() >= 20, "only {} alerts parsed: {names:?}", names.len());
}

#[test]
fn every_runbook_url_points_at_a_section_of_the_runbook() {
    let file = rules();
    let runbook = read(&root().join("docs/runbook.md"));
    let sections: BTreeSet<String> =
        runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(github_anchor).collect();
    // One base for all, whatever it is (README says how to point it elsewhere with one sed).
    let mut bases = BTreeSet::new();
    let mut anchors = BTreeSet::new();
    for rule in alerts(&file) {
        let name = rule.alert.as_deref().unwrap();
        let url = &rule.annotations["runbook_url"];
        let (base, anchor) = url.split_once('#').unwrap_or_else(|| panic!("{name}: {url} has no #anchor"));
        bases.insert(base);
        assert_eq!(anchor, name.to_lowercase(), "{name}: the anchor is the alert's name in lower case");
        assert!(sections.contains(anchor), "{name}: docs/runbook.md has no section \"## {name}\"");
        anchors.insert(anchor.to_owned());
    }
    assert_eq!(bases.len(), 1, "runbook_url bases differ: {bases:?}");
    // And no section for an alert that is gone.
    for heading in runbook.lines().filter_map(|l| l.strip_prefix("## ")) {
        if heading.starts_with("L2watch") {
            assert!(anchors.contains(&github_anchor(heading)), "runbook section {heading} has no alert");
        }
    }
}

#[test]
fn every_alert_has_a_firing_test_and_a_silent_check() {
    let file = rules();
    let path = root().join("deploy/alerts/l2watch.rules.test.yml");
    let tests: TestFile =
        serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(tests.rule_files, ["l2watch.rules.yml"]);
    let by_name: BTreeMap<&str, &Rule> =
        alerts(&file).into_iter().map(|r| (r.alert.as_deref().unwrap(), r)).collect();
    let cases: Vec<&AlertTest> = tests.tests.iter().flat_map(|g| &g.alert_rule_test).collect();
    // promtool passes a silent check of an alert that does not exist: a misspelt name tests nothing.
    for case in &cases {
        assert!(
            by_name.contains_key(case.alertname.as_str()),
            "tests name an unknown alert {}",
            case.alertname
        );
    }
    for (name, rule) in &by_name {
        let firing: Vec<&ExpAlert> =
            cases.iter().filter(|c| c.alertname == *name).flat_map(|c| &c.exp_alerts).collect();
        assert!(!firing.is_empty(), "{name}: no test where it fires");
        for exp in &firing {
            assert_eq!(
                exp.exp_labels.get("severity"),
                rule.labels.get("severity"),
                "{name}: severity in the test"
            );
            for key in ["summary", "description", "runbook_url"] {
                assert!(exp.exp_annotations.contains_key(key), "{name}: a firing test does not check {key}");
            }
        }
        assert!(
            cases.iter().any(|c| c.alertname == *name && c.exp_alerts.is_empty()),
            "{name}: no test where it stays silent"
        );
    }
    // The benign cases: no alert may fire at any evaluation of that scenario, which the ALERTS series
    // shows (a per-name check at one instant would miss an alert that fired and resolved before it).
    let benign = tests.tests.iter().flat_map(|g| &g.promql_expr_test).any(|t| {
        t.expr.replace(' ', "").contains("ALERTS{alertstate=\"firing\"}") && t.exp_samples.is_empty()
    });
    assert!(
        benign,
        "no test asserts that nothing fires over a benign scenario (ALERTS{{alertstate=\"firing\"}})"
    );
}

#[test]
fn the_scrape_job_selector_is_written_one_way() {
    // The rules header tells how to adapt the job selector with one sed: that only works while every
    // `up` selector spells it the same way.
    let file = rules();
    let mut selectors = BTreeSet::new();
    for rule in alerts(&file) {
        for (i, _) in rule.expr.match_indices("up{") {
            let inside = &rule.expr[i + 3..];
            let inside = &inside[..inside.find('}').unwrap()];
            let job = inside.split(',').map(str::trim).find(|m| m.starts_with("job")).unwrap_or_else(|| {
                panic!("{}: `up` without a job matcher: {inside}", rule.alert.as_deref().unwrap())
            });
            selectors.insert(job.to_owned());
        }
    }
    assert_eq!(selectors.len(), 1, "the job matchers differ: {selectors:?}");
}
