//! A client for the Prometheus HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`), as served by Prometheus 2.x.
//!
//! Answers look like
//! `{"status":"success","data":{"resultType":"vector","result":[{"metric":{..},"value":[1795970122.231,"13"]}]}}`:
//! values are strings (`"NaN"`, `"+Inf"` and `"-Inf"` included), timestamps
//! float seconds. Errors are `{"status":"error","errorType":"bad_data","error":".."}`
//! with HTTP 400 (bad query), 422 (execution), 503 (timeout, canceled) or 500.
//! Nothing in an answer makes this module panic: whatever it cannot read is
//! [`PromError::Garbage`].
//!
//! The client honours the usual `HTTP_PROXY`/`NO_PROXY` environment (reqwest's
//! default).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::calibrated::{QUARTERS, typical_by_quarter};
use crate::domain::format::causes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Labels of a series (`__name__` included when Prometheus keeps it).
pub type Labels = BTreeMap<String, String>;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range query: its labels and `(time, value)` points.
pub type Series = (Labels, Vec<(DateTime<Utc>, f64)>);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    /// Prometheus refused the query (HTTP 400, `errorType` `bad_data`); the
    /// text is Prometheus's own, e.g. `1:6: parse error: unexpected identifier "is"`.
    #[error("Prometheus rejected the query: {0}")]
    BadData(String),
    /// Any other HTTP failure: the status and what Prometheus said
    /// (`errorType: error` when it answered in its own format).
    #[error("Prometheus answered HTTP {0}: {1}")]
    Http(u16, String),
    /// No complete answer within the client's timeout.
    #[error("Prometheus did not answer in time")]
    Timeout,
    /// No connection (refused, no route, DNS failure, reset...).
    #[error("Prometheus is unreachable: {0}")]
    Unreachable(String),
    /// An answer that is not what the API documents.
    #[error("unreadable answer from Prometheus: {0}")]
    Garbage(String),
    /// An empty vector where a value was required.
    #[error("the query returned no samples")]
    Empty,
    /// A load history too short or with gaps to say what each quarter hour
    /// of the day is like.
    #[error("{0}")]
    History(String),
}

/// How far back the platform's load history is read for its traffic, and
/// at what step: a week, every 5 minutes (2,016 points, seven days' worth
/// in each quarter hour of the day).
const TRAFFIC_HISTORY: chrono::Duration = chrono::Duration::days(7);
const TRAFFIC_STEP: Duration = Duration::from_secs(300);

/// How much of an unreadable body an error quotes.
const QUOTE_CHARS: usize = 200;

/// Why a Prometheus server's settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the Prometheus timeout must be more than zero")]
    ZeroTimeout,
    /// The URL as given, and what is wrong with it.
    #[error("bad Prometheus URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    /// Always ends with `/`, so API paths join below any prefix.
    base: reqwest::Url,
    timeout: Duration,
}

impl Prometheus {
    /// `base_url` is where Prometheus serves its UI, e.g.
    /// `http://127.0.0.1:9090` or `https://mon.example/prometheus`;
    /// `timeout` bounds each request (connecting included) and is passed on as
    /// the query's evaluation timeout.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let bad = |why: String| ConfigError::Url {
            url: base_url.to_string(),
            why,
        };
        let mut base = reqwest::Url::parse(base_url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host".into()));
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ConfigError::Client(causes(&e)))?;
        Ok(Self {
            client,
            base,
            timeout,
        })
    }

    /// The base URL, ending with `/`.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// An instant query (`/api/v1/query`) evaluated now. A scalar answer comes
    /// back as one sample without labels; a range vector or string answer is
    /// [`PromError::Garbage`] (the query is not an instant query).
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, PromError> {
        let data = self
            .get("api/v1/query", &[("query", promql.to_string())])
            .await?;
        instant_result(&data)
    }

    /// A range query (`/api/v1/query_range`): one entry per series, its
    /// points in time order. A zero `step` is refused by Prometheus
    /// ([`PromError::BadData`]).
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, PromError> {
        let params = [
            ("query", promql.to_string()),
            ("start", start.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ("end", end.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        let data = self.get("api/v1/query_range", &params).await?;
        range_result(&data)
    }

    /// The value of a query that yields one sample (or a scalar).
    /// [`PromError::Empty`] when it yields none; [`PromError::Garbage`] when
    /// it yields several (aggregate it, e.g. with `sum(...)`).
    pub async fn scalar(&self, promql: &str) -> Result<f64, PromError> {
        single_value(self.query(promql).await?)
    }

    /// The platform's traffic: `promql` (one series, the users' load) over
    /// the [`TRAFFIC_HISTORY`] before `now`, as the typical load of each
    /// quarter hour of the day (the forecaster draws the hours a repair has
    /// not lived through yet from it). [`PromError::History`] when the
    /// history does not cover every quarter hour of a day.
    pub async fn traffic(
        &self,
        promql: &str,
        now: DateTime<Utc>,
    ) -> Result<[f64; QUARTERS], PromError> {
        let series = self
            .query_range(promql, now - TRAFFIC_HISTORY, now, TRAFFIC_STEP)
            .await?;
        match series.as_slice() {
            [] => Err(PromError::Empty),
            [(_, points)] => typical_by_quarter(points.iter().copied()).map_err(PromError::History),
            many => Err(PromError::Garbage(format!(
                "{} series where one load was expected (aggregate it, e.g. with max(...))",
                many.len()
            ))),
        }
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, PromError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| PromError::Unreachable(format!("cannot build the URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            q.append_pair("timeout", &format!("{:.3}", self.timeout.as_secs_f64()));
        }
        let resp = self.client.get(url).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport)?;
        decode(status, &body)
    }
}

/// A reqwest failure as a PromError.
fn transport(e: reqwest::Error) -> PromError {
    if e.is_timeout() {
        PromError::Timeout
    } else {
        PromError::Unreachable(causes(&e))
    }
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    crate::domain::format::clip(text, QUOTE_CHARS + 1)
}

/// Reads an API answer: the `data` member on success, the matching error
/// otherwise.
fn decode(status: u16, body: &[u8]) -> Result<Value, PromError> {
    let ok = (200..300).contains(&status);
    let json: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if ok => {
            return Err(PromError::Garbage(format!(
                "not JSON ({e}): {}",
                quote(body)
            )));
        }
        Err(_) => return Err(PromError::Http(status, quote(body))),
    };
    match json.get("status").and_then(Value::as_str) {
        Some("success") if ok => json
            .get("data")
            .cloned()
            .ok_or_else(|| PromError::Garbage("a success without data".into())),
        Some("error") => {
            let kind = json
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let text = json
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no error text)");
            if kind == "bad_data" {
                Err(PromError::BadData(text.to_string()))
            } else {
                Err(PromError::Http(status, format!("{kind}: {text}")))
            }
        }
        _ if !ok => Err(PromError::Http(status, quote(body))),
        _ => Err(PromError::Garbage(format!(
            "no \"status\":\"success\": {}",
            quote(body)
        ))),
    }
}

fn result_type(data: &Value) -> Result<&str, PromError> {
    data.get("resultType")
        .and_then(Value::as_str)
        .ok_or_else(|| PromError::Garbage("no resultType".into()))
}

/// The samples of an instant query's `data`.
fn instant_result(data: &Value) -> Result<Vec<Sample>, PromError> {
    let result = data.get("result");
    match result_type(data)? {
        "vector" => {
            let items = result
                .and_then(Value::as_array)
                .ok_or_else(|| PromError::Garbage("a vector without a result list".into()))?;
            items
                .iter()
                .map(|item| {
                    let labels = labels(item)?;
                    let (_, value) = point(item.get("value"))?;
                    Ok(Sample { labels, value })
                })
                .collect()
        }
        "scalar" => {
            let (_, value) = point(result)?;
            Ok(vec![Sample {
                labels: Labels::new(),
                value,
            }])
        }
        other => Err(PromError::Garbage(format!(
            "resultType {other:?} where an instant vector or scalar was expected"
        ))),
    }
}

/// The series of a range query's `data`.
fn range_result(data: &Value) -> Result<Vec<Series>, PromError> {
    match result_type(data)? {
        "matrix" => {}
        other => {
            return Err(PromError::Garbage(format!(
                "resultType {other:?} where a matrix was expected"
            )));
        }
    }
    let items = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| PromError::Garbage("a matrix without a result list".into()))?;
    items
        .iter()
        .map(|item| {
            let labels = labels(item)?;
            let values = match item.get("values") {
                // A series may carry only native-histogram points.
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(points)) => points
                    .iter()
                    .map(|p| point(Some(p)))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(PromError::Garbage("values is not a list".into())),
            };
            Ok((labels, values))
        })
        .collect()
}

fn labels(item: &Value) -> Result<Labels, PromError> {
    match item.get("metric") {
        None | Some(Value::Null) => Ok(Labels::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(PromError::Garbage(format!("label {k:?} is not a string"))),
            })
            .collect(),
        Some(_) => Err(PromError::Garbage("metric is not an object".into())),
    }
}

/// A `[timestamp, "value"]` pair.
fn point(p: Option<&Value>) -> Result<(DateTime<Utc>, f64), PromError> {
    let pair = match p {
        Some(Value::Array(pair)) if pair.len() == 2 => pair,
        Some(other) => {
            return Err(PromError::Garbage(format!(
                "a sample value that is not a [time, value] pair: {}",
                quote(other.to_string().as_bytes())
            )));
        }
        None => {
            return Err(PromError::Garbage(
                "a sample without a value (native histograms are not supported)".into(),
            ));
        }
    };
    let time = pair[0]
        .as_f64()
        .filter(|t| t.is_finite())
        // `as` saturates; out-of-range times give None.
        .and_then(|t| DateTime::from_timestamp_millis((t * 1000.0).round() as i64))
        .ok_or_else(|| PromError::Garbage(format!("bad sample time {}", pair[0])))?;
    let value = number(&pair[1])
        .ok_or_else(|| PromError::Garbage(format!("bad sample value {}", pair[1])))?;
    Ok((time, value))
}

/// A sample value: Prometheus sends strings (`"13"`, `"1e+06"`, `"NaN"`,
/// `"+Inf"`, `"-Inf"`); plain JSON numbers are accepted too.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            s => s.parse::<f64>().ok(),
        },
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn single_value(samples: Vec<Sample>) -> Result<f64, PromError> {
    match samples.as_slice() {
        [] => Err(PromError::Empty),
        [one] => Ok(one.value),
        many => Err(PromError::Garbage(format!(
            "{} samples where one value was expected",
            many.len()
        ))),
    }
}

/// Default PromQL for a Postfix + Dovecot platform, scraped with
/// prometheus-postfix-exporter (0.3) and Dovecot's `stats` `/metrics`
/// endpoint. Series of the exporter's log counters only appear once their
/// first event is seen, so those queries may be empty on a quiet server.
pub mod queries {
    /// Messages per Postfix queue (`active`, `deferred`, `hold`, `incoming`,
    /// `maildrop`), one sample per queue, from the exporter's showq histogram.
    pub const QUEUE_DEPTH_BY_QUEUE: &str =
        "sum by (queue) (postfix_showq_message_age_seconds_count)";
    /// Messages in all Postfix queues: one sample.
    pub const QUEUE_DEPTH_TOTAL: &str = "sum(postfix_showq_message_age_seconds_count)";
    /// Messages in the deferred queue: one sample (for [`super::Prometheus::scalar`]).
    pub const DEFERRED_DEPTH: &str =
        "sum(postfix_showq_message_age_seconds_count{queue=\"deferred\"})";
    /// Bytes per Postfix queue.
    pub const QUEUE_BYTES_BY_QUEUE: &str = "sum by (queue) (postfix_showq_message_size_bytes_sum)";
    /// Messages per queue that have waited more than 1,000 s (the exporter's
    /// age buckets are powers of ten: 10 s, 100 s, 1,000 s, 10,000 s...).
    pub const QUEUED_OVER_1000S_BY_QUEUE: &str = "sum by (queue) (postfix_showq_message_age_seconds_count) - sum by (queue) (postfix_showq_message_age_seconds_bucket{le=\"1000\"})";
    /// 1 per Postfix instance whose showq socket the exporter could read,
    /// 0 when it could not (Postfix down or the socket path wrong).
    pub const POSTFIX_UP: &str = "postfix_up";
    /// Every scrape target: 1 up, 0 down (labels `job`, `instance`).
    pub const TARGETS_UP: &str = "up";
    /// Only the targets that are down.
    pub const TARGETS_DOWN: &str = "up == 0";
    /// Messages that entered Postfix's queue per second over 5 minutes:
    /// every new message passes cleanup once (from smtpd, pickup or a
    /// bounce), so mail that leaves again within a second is counted too,
    /// where successive `postqueue` listings never see it. A plain counter,
    /// exported from the exporter's start.
    pub const QUEUE_ARRIVAL_RATE: &str = "sum(rate(postfix_cleanup_messages_processed_total[5m]))";
    /// Messages that left Postfix's queue (delivered, bounced or expired:
    /// qmgr's `removed`) per second over 5 minutes.
    pub const QUEUE_DEPARTURE_RATE: &str = "sum(rate(postfix_qmgr_messages_removed_total[5m]))";
    /// Messages accepted by smtpd per second over 5 minutes (inbound rate).
    pub const SMTPD_ACCEPTED_RATE: &str = "sum(rate(postfix_smtpd_messages_processed_total[5m]))";
    /// Messages smtpd rejected per second over 5 minutes, by SMTP code.
    pub const SMTPD_REJECTED_RATE_BY_CODE: &str =
        "sum by (code) (rate(postfix_smtpd_messages_rejected_total[5m]))";
    /// Outbound deliveries deferred per second over 5 minutes.
    pub const SMTP_DEFERRED_RATE: &str = "sum(rate(postfix_smtp_deferred_messages_total[5m]))";
    /// 95th percentile of outbound SMTP delivery delay (seconds) over 5
    /// minutes, from the exporter's `postfix_smtp_delivery_delay_seconds`
    /// histogram (all delay stages together).
    pub const SMTP_DELAY_P95_SECONDS: &str = "histogram_quantile(0.95, sum by (le) (rate(postfix_smtp_delivery_delay_seconds_bucket[5m])))";
    /// Failed SASL logins per second over 5 minutes (credential stuffing,
    /// broken clients).
    pub const SASL_FAILURE_RATE: &str =
        "sum(rate(postfix_smtpd_sasl_authentication_failures_total[5m]))";
    /// Dovecot instances being scraped, with their version
    /// (`dovecot_build_info{version,revision}`, always exported by Dovecot
    /// 2.3's stats `/metrics`).
    pub const DOVECOT_BUILD_INFO: &str = "dovecot_build_info";

    /// Every query above with its name, e.g. for a "known queries" list or
    /// to check that a Prometheus accepts them all.
    pub const ALL: &[(&str, &str)] = &[
        ("QUEUE_DEPTH_BY_QUEUE", QUEUE_DEPTH_BY_QUEUE),
        ("QUEUE_DEPTH_TOTAL", QUEUE_DEPTH_TOTAL),
        ("DEFERRED_DEPTH", DEFERRED_DEPTH),
        ("QUEUE_BYTES_BY_QUEUE", QUEUE_BYTES_BY_QUEUE),
        ("QUEUED_OVER_1000S_BY_QUEUE", QUEUED_OVER_1000S_BY_QUEUE),
        ("POSTFIX_UP", POSTFIX_UP),
        ("TARGETS_UP", TARGETS_UP),
        ("TARGETS_DOWN", TARGETS_DOWN),
        ("QUEUE_ARRIVAL_RATE", QUEUE_ARRIVAL_RATE),
        ("QUEUE_DEPARTURE_RATE", QUEUE_DEPARTURE_RATE),
        ("SMTPD_ACCEPTED_RATE", SMTPD_ACCEPTED_RATE),
        ("SMTPD_REJECTED_RATE_BY_CODE", SMTPD_REJECTED_RATE_BY_CODE),
        ("SMTP_DEFERRED_RATE", SMTP_DEFERRED_RATE),
        ("SMTP_DELAY_P95_SECONDS", SMTP_DELAY_P95_SECONDS),
        ("SASL_FAILURE_RATE", SASL_FAILURE_RATE),
        ("DOVECOT_BUILD_INFO", DOVECOT_BUILD_INFO),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Result<Value, PromError> {
        decode(200, body.as_bytes())
    }

    #[test]
    fn reads_a_vector() {
        let data = ok(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"queue":"active"},"value":[1795985925.885,"0"]},{"metric":{"queue":"deferred"},"value":[1795985925.885,"2"]}]}}"#).expect("success");
        let samples = instant_result(&data).expect("vector");
        assert_eq!(samples.len(), 2);
        assert_eq!(
            samples[1].labels.get("queue").map(String::as_str),
            Some("deferred")
        );
        assert_eq!(samples[1].value, 2.0);
    }

    #[test]
    fn reads_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"v":"nan"},"value":[1,"NaN"]},
            {"metric":{"v":"inf"},"value":[1,"+Inf"]},
            {"metric":{"v":"-inf"},"value":[1,"-Inf"]},
            {"metric":{"v":"exp"},"value":[1,"1e+06"]},
            {"metric":{"v":"num"},"value":[1,2.5]},
            {"value":[1,"-0.25"]}]}}"#;
        let s = instant_result(&ok(body).expect("success")).expect("vector");
        assert!(s[0].value.is_nan());
        assert_eq!(s[1].value, f64::INFINITY);
        assert_eq!(s[2].value, f64::NEG_INFINITY);
        assert_eq!(s[3].value, 1e6);
        assert_eq!(s[4].value, 2.5);
        assert!(s[5].labels.is_empty());
        assert_eq!(s[5].value, -0.25);
    }

    #[test]
    fn reads_a_scalar_as_one_unlabelled_sample() {
        let data =
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1795985925.91,"+Inf"]}}"#)
                .expect("success");
        let s = instant_result(&data).expect("scalar");
        assert_eq!(s.len(), 1);
        assert!(s[0].labels.is_empty());
        assert_eq!(single_value(s), Ok(f64::INFINITY));
    }

    #[test]
    fn reads_a_matrix() {
        let data = ok(r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"postfix"},"values":[[1795985925.479,"1"],[1795985926.479,"0"]]}]}}"#).expect("success");
        let series = range_result(&data).expect("matrix");
        assert_eq!(series.len(), 1);
        let (labels, points) = &series[0];
        assert_eq!(labels.get("job").map(String::as_str), Some("postfix"));
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0].0,
            DateTime::from_timestamp_millis(1_795_985_925_479).expect("in range")
        );
        assert_eq!(points[1].1, 0.0);
        // A matrix is not an instant answer, and the other way round.
        assert!(matches!(instant_result(&data), Err(PromError::Garbage(_))));
        let vector = ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
            .expect("success");
        assert!(matches!(range_result(&vector), Err(PromError::Garbage(_))));
    }

    #[test]
    fn scalar_needs_exactly_one_sample() {
        assert_eq!(single_value(vec![]), Err(PromError::Empty));
        let s = Sample {
            labels: Labels::new(),
            value: 1.0,
        };
        assert!(matches!(
            single_value(vec![s.clone(), s]),
            Err(PromError::Garbage(m)) if m.contains("2 samples")
        ));
    }

    #[test]
    fn maps_error_answers() {
        let bad = decode(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected identifier \"is\""}"#,
        );
        assert!(matches!(bad, Err(PromError::BadData(m)) if m.contains("parse error")));
        let exec = decode(
            422,
            br#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
        );
        assert_eq!(
            exec,
            Err(PromError::Http(
                422,
                "execution: many-to-many matching not allowed".into()
            ))
        );
        let timeout = decode(
            503,
            br#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        );
        assert!(matches!(timeout, Err(PromError::Http(503, m)) if m.starts_with("timeout: ")));
        let proxy = decode(502, b"<html><body>Bad Gateway</body></html>");
        assert!(matches!(proxy, Err(PromError::Http(502, m)) if m.contains("Bad Gateway")));
        assert_eq!(
            decode(404, b""),
            Err(PromError::Http(404, "(empty body)".into()))
        );
        assert!(matches!(
            decode(500, br#"{"x":1}"#),
            Err(PromError::Http(500, _))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let bodies: &[&str] = &[
            "",
            "hello",
            "<html>login page</html>",
            "null",
            "[]",
            "{}",
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":null}"#,
            r#"{"status":"success","data":{"resultType":"vector"}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":[],"value":[1,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"one"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["x","1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e300,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[-1e300,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,null]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"2"}]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[7]}}"#,
            r#"{"status":"success","data":{"resultType":"scalar","result":"1"}}"#,
            r#"{"status":"success","data":{"resultType":"string","result":[1,"s"]}}"#,
            r#"{"status":"success","data":{"resultType":42,"result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],"x"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":{}}]}}"#,
            r#"{"status":"warning","data":{}}"#,
            r#"{"status":"error"}"#,
            r#"{"status":"error","errorType":7,"error":["x"]}"#,
        ];
        for body in bodies {
            for status in [200, 400, 503] {
                let decoded = decode(status, body.as_bytes());
                if let Ok(data) = decoded {
                    let i = instant_result(&data);
                    let r = range_result(&data);
                    assert!(i.is_err() || r.is_err(), "{body}: both readings succeeded");
                    assert!(
                        !matches!(i, Ok(ref s) if !s.is_empty()),
                        "{body}: a sample from garbage: {i:?}"
                    );
                }
            }
        }
        // Invalid UTF-8 and a long body are quoted briefly.
        let long = format!("\u{fffd}{}", "x".repeat(10_000));
        match decode(200, long.as_bytes()) {
            Err(PromError::Garbage(m)) => assert!(m.len() < 1_000, "{m}"),
            other => panic!("expected Garbage, got {other:?}"),
        }
        assert!(matches!(
            decode(200, &[0xff, 0xfe, 0x00]),
            Err(PromError::Garbage(_))
        ));
    }

    #[test]
    fn new_checks_the_url_and_keeps_a_path_prefix() {
        let t = Duration::from_secs(1);
        let refused = |url: &str, t| Prometheus::new(url, t).err().map(|e| e.to_string());
        assert_eq!(
            refused("not a url", t).as_deref(),
            Some("bad Prometheus URL \"not a url\": relative URL without a base")
        );
        assert_eq!(
            refused("ftp://127.0.0.1:9090", t).as_deref(),
            Some("bad Prometheus URL \"ftp://127.0.0.1:9090\": the scheme must be http or https")
        );
        assert_eq!(
            refused("http://127.0.0.1:9090", Duration::ZERO).as_deref(),
            Some("the Prometheus timeout must be more than zero")
        );
        let p = Prometheus::new("http://127.0.0.1:9090", t).expect("valid");
        assert_eq!(p.base_url(), "http://127.0.0.1:9090/");
        let p = Prometheus::new(" https://mon.example/prometheus?x=1 ", t).expect("valid");
        assert_eq!(p.base_url(), "https://mon.example/prometheus/");
        assert_eq!(
            p.base.join("api/v1/query").map(|u| u.to_string()).ok(),
            Some("https://mon.example/prometheus/api/v1/query".into())
        );
    }

    #[test]
    fn every_default_query_is_named_once() {
        let mut names: Vec<&str> = queries::ALL.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), queries::ALL.len());
        assert!(queries::ALL.iter().all(|(_, q)| !q.trim().is_empty()));
    }
}
