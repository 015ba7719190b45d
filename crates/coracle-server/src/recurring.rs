//! Recurring runs: the API routes (`/recurringruns…`), the JSON shape of a recurring run, when
//! a trigger is due (pure functions of fixed times), and the scheduler that fires due runs in
//! a running server.
//!
//! Routes (under `/apis/v2beta1`):
//! - `POST /recurringruns`, `GET /recurringruns` (`experiment_id` and the list parameters),
//!   `GET /recurringruns/{id}`, `DELETE /recurringruns/{id}`
//! - `POST /recurringruns/{id}:enable | :disable`
//!
//! When a schedule is due (all times in whole seconds, UTC):
//! - A periodic trigger is due `interval_second` after the last due time it fired for; the
//!   first time, one interval after its `start_time` (after its creation when it has none).
//! - A cron trigger is due at the first time its expression matches strictly after the last
//!   due time it fired for (or after `start_time`, or after its creation). Expressions have six
//!   fields, seconds first (`0 30 9 * * 1-5`); five fields are classic cron (minute hour
//!   day-of-month month day-of-week) and get a seconds field of 0; `@hourly`, `@daily`, `@every 90s` and the other descriptors work too.
//! - Nothing is due past `end_time`. A trigger with neither schedule fires once, at creation.
//! - Catching up: a schedule that fell behind (the server was down, or it was disabled for a
//!   while) fires every due time it missed, oldest first, each run with `scheduled_at` = its due
//!   time. With `no_catchup` it fires only the latest one missed (a periodic trigger that
//!   missed more than one interval fires at the current time).
//! - `max_concurrency` (1 to 10): while that many of its runs are unfinished, a due time waits
//!   (it is not dropped) and fires when a run ends.
//! - A disabled schedule never fires; enabling it again resumes from the last due time it fired
//!   for, so a schedule that catches up also fires what came due while it was disabled.
//!
//! The scheduler ([`spawn_scheduler`]) looks every [`TICK`] and fires with
//! [`crate::runs::create_run`]. The last due time fired is stored, and also read back from the
//! runs' `scheduled_at`, so a schedule resumes where it left off after a restart.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, Utc};
use coracle_store::Store;
use coracle_store::recurring::{RecurringRunMode, RecurringRunRecord, RecurringRunSchedule};
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::list::{ApiQuery, ListParams, plain_id, split_action};
use crate::runs::{NewRun, PipelineSource};
use crate::wire::{api_time, field, kind_of};
use crate::{ApiError, AppState};

/// How often the scheduler looks for due schedules.
pub const TICK: Duration = Duration::from_secs(1);

/// The range of `max_concurrency`.
pub const MAX_CONCURRENCY_RANGE: std::ops::RangeInclusive<i64> = 1..=10;

/// Held while a schedule fires and while one is disabled or deleted, so that once `:disable`
/// or `DELETE` has answered, no run of that schedule starts any more.
static FIRING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/recurringruns", post(create).get(list))
        .route(
            "/recurringruns/{recurring_run_id}",
            get(get_one).delete(delete_one).post(action),
        )
}

// ---- triggers -------------------------------------------------------------------------------

/// When a recurring run is due: its schedule and the window it fires in.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub schedule: Schedule,
    /// Nothing is due before this (the first periodic run is one interval after it).
    pub start_time: Option<DateTime<Utc>>,
    /// Nothing is due after this.
    pub end_time: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub enum Schedule {
    Cron(CronExpression),
    /// Every this many seconds (at least 1).
    Periodic {
        interval_second: i64,
    },
    /// Once, when the recurring run is created (a trigger with neither schedule).
    Once,
}

/// A parsed cron expression and its text.
#[derive(Clone, Debug)]
pub struct CronExpression {
    text: String,
    kind: CronKind,
}

#[derive(Clone, Debug)]
enum CronKind {
    Pattern(Box<croner::Cron>),
    /// `@every <duration>`: a fixed delay in whole seconds.
    Every(i64),
}

impl FromStr for CronExpression {
    type Err = String;

    /// Six fields, seconds first; five fields are classic cron and get a seconds field of 0; or a
    /// descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
    /// `@hourly`, `@every 1h30m`). Times are UTC.
    fn from_str(text: &str) -> Result<CronExpression, String> {
        let trimmed = text.trim();
        let pattern = match trimmed.to_ascii_lowercase().as_str() {
            "" => return Err("the cron expression is empty".to_owned()),
            "@yearly" | "@annually" => "0 0 0 1 1 *".to_owned(),
            "@monthly" => "0 0 0 1 * *".to_owned(),
            "@weekly" => "0 0 0 * * 0".to_owned(),
            "@daily" | "@midnight" => "0 0 0 * * *".to_owned(),
            "@hourly" => "0 0 * * * *".to_owned(),
            lower if lower.starts_with("@every ") || lower == "@every" => {
                let duration = trimmed["@every".len()..].trim();
                let seconds =
                    every_seconds(duration).map_err(|why| format!("{trimmed:?}: {why}"))?;
                return Ok(CronExpression {
                    text: trimmed.to_owned(),
                    kind: CronKind::Every(seconds),
                });
            }
            lower if lower.starts_with('@') => {
                return Err(format!(
                    "unknown descriptor {trimmed:?}: expected @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight, @hourly or @every <duration>"
                ));
            }
            _ => {
                let fields: Vec<&str> = trimmed.split_whitespace().collect();
                match fields.len() {
                    6 => fields.join(" "),
                    // Classic five-field cron: due at second 0.
                    5 => format!("0 {}", fields.join(" ")),
                    n => {
                        return Err(format!(
                            "{trimmed:?} has {n} fields; expected 6 (second minute hour \
                             day-of-month month day-of-week), or 5 without the seconds"
                        ));
                    }
                }
            }
        };
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(&pattern).map_err(|error| {
            let fields: Vec<&str> = pattern.split_whitespace().collect();
            match bad_cron_field(&parser, &fields) {
                Some(why) => format!("{trimmed:?}: {why}"),
                None => format!("{trimmed:?}: {error}"),
            }
        })?;
        Ok(CronExpression {
            text: trimmed.to_owned(),
            kind: CronKind::Pattern(Box::new(cron)),
        })
    }
}

/// The names and ranges of the six fields, in order.
const CRON_FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
];

/// Which of six fields is wrong: each is tried alone, the others `*`.
fn bad_cron_field(parser: &CronParser, fields: &[&str]) -> Option<String> {
    fields
        .iter()
        .zip(CRON_FIELDS)
        .enumerate()
        .find_map(|(index, (field, (name, range)))| {
            let mut alone = ["*"; 6];
            alone[index] = field;
            parser
                .parse(&alone.join(" "))
                .err()
                .map(|error| format!("the {name} field {field:?} is invalid ({range}): {error}"))
        })
}

impl CronExpression {
    /// The expression as it was given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first matching time strictly after `after` (Unix seconds).
    fn next_after(&self, after: i64) -> Option<i64> {
        match &self.kind {
            CronKind::Every(delay) => after.checked_add(*delay),
            CronKind::Pattern(cron) => cron
                .find_next_occurrence(&utc(after)?, false)
                .ok()
                .map(|time| time.timestamp()),
        }
    }

    /// The last time of the chain `first`, `next_after(first)`, … that is at or before `limit`
    /// (`first` itself when the next one is already past it).
    fn last_of_chain_until(&self, first: i64, limit: i64) -> i64 {
        if limit <= first {
            return first;
        }
        match &self.kind {
            CronKind::Every(delay) => first + (limit - first) / delay * delay,
            CronKind::Pattern(cron) => utc(limit)
                .and_then(|limit| cron.find_previous_occurrence(&limit, true).ok())
                .map(|time| time.timestamp())
                .filter(|previous| *previous > first)
                .unwrap_or(first),
        }
    }
}

/// The seconds of an `@every` duration: decimal numbers with units `h`, `m`, `s`, `ms`, `us`
/// (`µs`) or `ns` (`1h30m`, `1.5h`, `90s`), rounded down to whole seconds, at least 1.
fn every_seconds(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("@every needs a duration, as in \"@every 1h30m\"".to_owned());
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected a number at {rest:?}"))?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let nanos_per_unit = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" | "μs" => 1e3,
            "ns" => 1.0,
            "" => return Err(format!("invalid duration {text:?}: {number} has no unit")),
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use h, m, s, ms, us, ns)"
                ));
            }
        };
        total_nanos += value * nanos_per_unit;
        rest = next;
    }
    let seconds = (total_nanos / 1e9).floor();
    if seconds > 1e12 {
        return Err(format!("invalid duration {text:?}: too long"));
    }
    Ok((seconds as i64).max(1))
}

fn utc(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

impl Trigger {
    /// Reads the API's `trigger` object (`{cron_schedule: {cron, start_time, end_time}}` or
    /// `{periodic_schedule: {interval_second, start_time, end_time}}`; `{}` or `null`: once).
    /// Errors name the field (`trigger.periodic_schedule.interval_second: …`).
    pub fn from_json(value: &Value) -> Result<Trigger, String> {
        let object = match value {
            Value::Null => return Ok(Trigger::once()),
            Value::Object(object) => object,
            other => {
                return Err(format!(
                    "trigger: expected an object, found {}",
                    kind_of(other)
                ));
            }
        };
        let cron = field(object, &["cron_schedule", "cronSchedule"]);
        let periodic = field(object, &["periodic_schedule", "periodicSchedule"]);
        let (schedule_object, at) = match (cron, periodic) {
            (Some(_), Some(_)) => {
                return Err(
                    "trigger: give either cron_schedule or periodic_schedule, not both".to_owned(),
                );
            }
            (None, None) => return Ok(Trigger::once()),
            (Some(cron), None) => (cron, "trigger.cron_schedule"),
            (None, Some(periodic)) => (periodic, "trigger.periodic_schedule"),
        };
        let Value::Object(schedule_object) = schedule_object else {
            return Err(format!(
                "{at}: expected an object, found {}",
                kind_of(schedule_object)
            ));
        };
        let start_time = time_field(schedule_object, &["start_time", "startTime"], at)?;
        let end_time = time_field(schedule_object, &["end_time", "endTime"], at)?;
        let schedule = if cron.is_some() {
            let text = match field(schedule_object, &["cron"]) {
                Some(Value::String(text)) => text,
                Some(other) => {
                    return Err(format!(
                        "{at}.cron: expected a string, found {}",
                        kind_of(other)
                    ));
                }
                None => return Err(format!("{at}.cron: the cron expression is missing")),
            };
            let cron: CronExpression = text
                .parse()
                .map_err(|why| format!("{at}.cron: invalid cron expression {why}"))?;
            Schedule::Cron(cron)
        } else {
            let at = format!("{at}.interval_second");
            let interval_second =
                match field(schedule_object, &["interval_second", "intervalSecond"]) {
                    None => return Err(format!("{at}: the interval is missing")),
                    Some(value) => int64(value).map_err(|why| format!("{at}: {why}"))?,
                };
            if interval_second < 1 {
                return Err(format!(
                    "{at}: the interval must be at least 1 second, got {interval_second}"
                ));
            }
            Schedule::Periodic { interval_second }
        };
        Ok(Trigger {
            schedule,
            start_time,
            end_time,
        })
    }

    fn once() -> Trigger {
        Trigger {
            schedule: Schedule::Once,
            start_time: None,
            end_time: None,
        }
    }

    /// The API's `trigger` object: int64 as a string, times in RFC 3339.
    pub fn to_json(&self) -> Value {
        let mut schedule = Map::new();
        match &self.schedule {
            Schedule::Once => return json!({}),
            Schedule::Cron(cron) => {
                schedule.insert("cron".to_owned(), json!(cron.as_str()));
            }
            Schedule::Periodic { interval_second } => {
                schedule.insert(
                    "interval_second".to_owned(),
                    json!(interval_second.to_string()),
                );
            }
        }
        if let Some(start_time) = &self.start_time {
            schedule.insert("start_time".to_owned(), json!(api_time(start_time)));
        }
        if let Some(end_time) = &self.end_time {
            schedule.insert("end_time".to_owned(), json!(api_time(end_time)));
        }
        match &self.schedule {
            Schedule::Cron(_) => json!({"cron_schedule": schedule}),
            _ => json!({"periodic_schedule": schedule}),
        }
    }

    /// The next due time of a schedule that last fired for `last_fired` (`None`: never) and
    /// was created at `created_at`, as of `now`; `None` when it is never due again. With
    /// `no_catchup` a schedule that fell behind skips to the latest due time it missed. The
    /// answer may be after `now` (not due yet).
    pub fn next_due(
        &self,
        last_fired: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        no_catchup: bool,
    ) -> Option<DateTime<Utc>> {
        let start = self.start_time.map(|time| time.timestamp());
        let end = self
            .end_time
            .map(|time| time.timestamp())
            .unwrap_or(i64::MAX);
        let last = last_fired.map(|time| time.timestamp());
        let now = now.timestamp();
        // Where the schedule counts from: the last due time fired, else its start, else its
        // creation; never before its start.
        let counted_from = last.or(start).unwrap_or(created_at.timestamp());
        let counted_from = start.map_or(counted_from, |start| start.max(counted_from));
        let due = match &self.schedule {
            Schedule::Once => match last {
                None => created_at.timestamp(),
                Some(_) => return None,
            },
            Schedule::Periodic { interval_second } => {
                let next = counted_from.checked_add(*interval_second)?;
                if next > end {
                    return None;
                }
                if no_catchup && now >= next.saturating_add(*interval_second) {
                    now
                } else {
                    next
                }
            }
            Schedule::Cron(cron) => {
                let next = cron.next_after(counted_from)?;
                if next > end {
                    return None;
                }
                if no_catchup {
                    cron.last_of_chain_until(next, now.min(end))
                } else {
                    next
                }
            }
        };
        utc(due)
    }

    /// The due times to fire at `now`, oldest first, at most `limit` of them: every due time
    /// missed since `last_fired` (only the latest with `no_catchup`).
    pub fn due_times(
        &self,
        last_fired: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        no_catchup: bool,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut due = Vec::new();
        let mut last = last_fired;
        while due.len() < limit {
            match self.next_due(last, created_at, now, no_catchup) {
                Some(time) if time <= now => {
                    due.push(time);
                    last = Some(time);
                }
                _ => break,
            }
        }
        due
    }
}

/// How many more runs a schedule may start: `max_concurrency` (held to 1..=10) less its
/// unfinished runs.
pub fn free_slots(max_concurrency: i64, active_runs: i64) -> usize {
    let limit = max_concurrency.clamp(*MAX_CONCURRENCY_RANGE.start(), *MAX_CONCURRENCY_RANGE.end());
    usize::try_from(limit.saturating_sub(active_runs)).unwrap_or(0)
}

// ---- the scheduler --------------------------------------------------------------------------

/// One run a tick fired (or tried to).
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    pub recurring_run_id: String,
    pub scheduled_at: DateTime<Utc>,
    /// The run made, or why none was.
    pub result: Result<String, String>,
}

/// Starts the scheduler: every [`TICK`] it fires the due runs of every enabled recurring run
/// with [`crate::runs::create_run`]. Runs until aborted.
pub fn spawn_scheduler(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let fire = |record: RecurringRunRecord, scheduled_at: DateTime<Utc>| {
                let state = state.clone();
                async move { fire_run(&state, &record, scheduled_at).await }
            };
            if let Err(error) = tick(&state.store, Utc::now(), fire).await {
                tracing::warn!(error = %error, "the recurring run scheduler could not read its schedules");
            }
        }
    })
}

/// One look at every enabled schedule at time `now`: each due time that a free
/// `max_concurrency` slot allows is handed to `fire` (oldest first) and recorded as fired,
/// with the error `fire` gave, if any. A schedule whose trigger cannot be read is skipped.
/// Returns what was fired.
pub async fn tick<F, Fut>(
    store: &Store,
    now: DateTime<Utc>,
    mut fire: F,
) -> Result<Vec<Fired>, coracle_store::Error>
where
    F: FnMut(RecurringRunRecord, DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let mut fired = Vec::new();
    for schedule in store.enabled_recurring_run_schedules().await? {
        let due = match due_now(&schedule, now) {
            Ok(due) => due,
            Err(why) => {
                tracing::warn!(recurring_run_id = %schedule.recurring_run_id, error = %why, "skipping a recurring run whose trigger cannot be read");
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        let _firing = FIRING.lock().await;
        // Read again under the lock: it may have been disabled or deleted meanwhile.
        let Some(record) = store.get_recurring_run(&schedule.recurring_run_id).await? else {
            continue;
        };
        if record.mode != RecurringRunMode::Enable {
            continue;
        }
        for scheduled_at in due {
            let result = fire(record.clone(), scheduled_at).await;
            match &result {
                Ok(run_id) => {
                    tracing::info!(recurring_run_id = %record.recurring_run_id, run_id = %run_id, scheduled_at = %scheduled_at, "recurring run fired")
                }
                Err(why) => {
                    tracing::warn!(recurring_run_id = %record.recurring_run_id, scheduled_at = %scheduled_at, error = %why, "recurring run could not start its run")
                }
            }
            let error = result.as_ref().err().map(String::as_str);
            match store
                .record_recurring_run_fired(&record.recurring_run_id, scheduled_at, error)
                .await
            {
                Ok(()) | Err(coracle_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
            fired.push(Fired {
                recurring_run_id: record.recurring_run_id.clone(),
                scheduled_at,
                result,
            });
        }
    }
    Ok(fired)
}

/// The due times of one enabled schedule that may fire at `now`.
fn due_now(
    schedule: &RecurringRunSchedule,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let trigger = Trigger::from_json(&schedule.trigger)?;
    let slots = free_slots(schedule.max_concurrency, schedule.active_runs);
    Ok(trigger.due_times(
        schedule.last_fired_at,
        schedule.created_at,
        now,
        schedule.no_catchup,
        slots,
    ))
}

/// Makes and starts the run a recurring run fires for `scheduled_at`; returns its id.
pub async fn fire_run(
    state: &AppState,
    record: &RecurringRunRecord,
    scheduled_at: DateTime<Utc>,
) -> Result<String, String> {
    let request = new_run(record, scheduled_at)?;
    let run = crate::runs::create_run(state, request)
        .await
        .map_err(|error| error.message)?;
    run["run_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the new run has no run_id".to_owned())
}

/// The run a recurring run makes for one due time: its pipeline, parameters, experiment and
/// service account, named `{display_name}-{due time}`.
fn new_run(record: &RecurringRunRecord, scheduled_at: DateTime<Utc>) -> Result<NewRun, String> {
    let source = match (&record.pipeline_spec, &record.pipeline_id) {
        (Some(spec), _) => PipelineSource::Spec(spec.clone()),
        (None, Some(pipeline_id)) => PipelineSource::Version {
            pipeline_id: pipeline_id.clone(),
            pipeline_version_id: record.pipeline_version_id.clone(),
        },
        (None, None) => return Err("the recurring run has no pipeline spec or version".to_owned()),
    };
    let parameters = match record.runtime_config.get("parameters") {
        Some(Value::Object(parameters)) => parameters.clone(),
        _ => Map::new(),
    };
    let pipeline_root = record
        .runtime_config
        .get("pipeline_root")
        .and_then(Value::as_str)
        .filter(|root| !root.is_empty())
        .map(str::to_owned);
    Ok(NewRun {
        display_name: format!(
            "{}-{}",
            record.display_name,
            scheduled_at.format("%Y%m%d%H%M%S")
        ),
        description: record.description.clone(),
        experiment_id: record.experiment_id.clone(),
        source,
        parameters,
        pipeline_root,
        service_account: record.service_account.clone(),
        recurring_run_id: Some(record.recurring_run_id.clone()),
        scheduled_at: Some(scheduled_at),
    })
}

// ---- routes ---------------------------------------------------------------------------------

/// A `V2beta1RecurringRun` body, checked.
struct NewRecurringRun {
    run: NewRun,
    trigger: Trigger,
    max_concurrency: i64,
    no_catchup: bool,
    mode: RecurringRunMode,
}

impl NewRecurringRun {
    /// Reads the body of `POST /recurringruns`: the fields of a run (`display_name`,
    /// `description`, `experiment_id`, `pipeline_spec` or `pipeline_version_reference`,
    /// `runtime_config`, `service_account`) and `trigger`, `max_concurrency` (int64, as a
    /// string or a number; 1 when absent), `no_catchup`, `mode` (`ENABLE`; `DISABLE` or
    /// `MODE_UNSPECIFIED`, as absent, make it disabled).
    fn from_json(body: &Value) -> Result<NewRecurringRun, ApiError> {
        let Value::Object(object) = body else {
            return Err(ApiError::invalid(format!(
                "invalid recurring run: expected a JSON object, found {}",
                kind_of(body)
            )));
        };
        let run = NewRun::from_json(body).map_err(|error| {
            // The run's messages name `run`; here the body is a recurring run.
            let message = match error.message.strip_prefix("invalid run") {
                Some(rest) if rest.starts_with('.') => format!("invalid recurring_run{rest}"),
                Some(rest) => format!("invalid recurring run{rest}"),
                None => error.message,
            };
            ApiError::new(error.status, message)
        })?;
        if run.display_name.trim().is_empty() {
            return Err(ApiError::invalid(
                "invalid recurring_run.display_name: a recurring run needs a name",
            ));
        }
        let trigger = Trigger::from_json(field(object, &["trigger"]).unwrap_or(&Value::Null))
            .map_err(|why| ApiError::invalid(format!("invalid recurring_run.{why}")))?;
        let max_concurrency = match field(object, &["max_concurrency", "maxConcurrency"]) {
            None => 1,
            Some(value) => int64(value).map_err(|why| {
                ApiError::invalid(format!("invalid recurring_run.max_concurrency: {why}"))
            })?,
        };
        if !MAX_CONCURRENCY_RANGE.contains(&max_concurrency) {
            return Err(ApiError::invalid(format!(
                "invalid recurring_run.max_concurrency: {max_concurrency} is out of range; it \
                 must be 1 to 10"
            )));
        }
        let no_catchup = match field(object, &["no_catchup", "noCatchup"]) {
            None => false,
            Some(Value::Bool(value)) => *value,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "invalid recurring_run.no_catchup: expected true or false, found {}",
                    kind_of(other)
                )));
            }
        };
        let mode = match field(object, &["mode"]) {
            None => RecurringRunMode::Disable,
            Some(Value::String(text)) if text == "ENABLE" => RecurringRunMode::Enable,
            Some(Value::String(text)) if text == "DISABLE" || text == "MODE_UNSPECIFIED" => {
                RecurringRunMode::Disable
            }
            Some(Value::Number(number)) if number.as_i64() == Some(1) => RecurringRunMode::Enable,
            Some(Value::Number(number)) if matches!(number.as_i64(), Some(0 | 2)) => {
                RecurringRunMode::Disable
            }
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "invalid recurring_run.mode: {other} is not ENABLE or DISABLE"
                )));
            }
        };
        Ok(NewRecurringRun {
            run,
            trigger,
            max_concurrency,
            no_catchup,
            mode,
        })
    }
}

/// `POST /recurringruns`.
async fn create(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::invalid(format!(
                "invalid recurring run: the body is not JSON: {error}"
            ))
        })?
    };
    let record = create_recurring_run(&state, &body).await?;
    Ok(Json(recurring_run_json(&record)))
}

/// Checks and stores a recurring run given as a `V2beta1RecurringRun` body: a run it could
/// not start is refused now (400), not at every firing.
pub(crate) async fn create_recurring_run(
    state: &AppState,
    body: &Value,
) -> Result<RecurringRunRecord, ApiError> {
    let request = NewRecurringRun::from_json(body)?;
    // A run it could not start is refused now, not at every firing.
    crate::runs::check_new_run(state, &request.run)
        .await
        .map_err(|error| {
            let message = match error.message.strip_prefix("invalid run") {
                Some(rest) => format!("invalid recurring_run{rest}"),
                None => error.message,
            };
            ApiError::new(error.status, message)
        })?;
    let now = Utc::now();
    if let Schedule::Cron(cron) = &request.trigger.schedule
        && cron.next_after(now.timestamp()).is_none()
    {
        return Err(ApiError::invalid(format!(
            "invalid recurring_run.trigger.cron_schedule.cron: {:?} never matches a time",
            cron.as_str()
        )));
    }
    let NewRun {
        display_name,
        description,
        experiment_id,
        source,
        parameters,
        pipeline_root,
        service_account,
        ..
    } = request.run;
    let (pipeline_spec, pipeline_id, pipeline_version_id) = match source {
        PipelineSource::Spec(spec) => (Some(spec), None, None),
        PipelineSource::Version {
            pipeline_id,
            pipeline_version_id,
        } => {
            // The version is fixed now: the pipeline's newest when none is named.
            let found = state
                .store
                .pipeline_version_spec_text(&pipeline_id, pipeline_version_id.as_deref())
                .await?;
            let Some((version_id, _)) = found else {
                return Err(ApiError::not_found(match pipeline_version_id {
                    Some(version) => format!(
                        "pipeline version {version:?} of pipeline {pipeline_id:?} not found"
                    ),
                    None => format!("pipeline {pipeline_id:?} not found, or it has no versions"),
                }));
            };
            (None, Some(pipeline_id), Some(version_id))
        }
    };
    let experiment_id = match experiment_id {
        Some(id) => id,
        None => state.store.default_experiment_id().await?,
    };
    let mut runtime_config = json!({"parameters": parameters});
    if let Some(root) = pipeline_root {
        runtime_config["pipeline_root"] = json!(root);
    }
    let record = RecurringRunRecord {
        recurring_run_id: uuid::Uuid::new_v4().to_string(),
        display_name,
        description,
        namespace: String::new(),
        experiment_id: Some(experiment_id),
        pipeline_spec,
        pipeline_id,
        pipeline_version_id,
        runtime_config,
        service_account,
        trigger: request.trigger.to_json(),
        max_concurrency: request.max_concurrency,
        no_catchup: request.no_catchup,
        mode: request.mode,
        error: None,
        created_at: now,
        updated_at: now,
        last_fired_at: None,
    };
    state.store.insert_recurring_run(&record).await?;
    tracing::info!(recurring_run_id = %record.recurring_run_id, name = %record.display_name, "recurring run created");
    Ok(record)
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page_size: Option<String>,
    page_token: Option<String>,
    sort_by: Option<String>,
    filter: Option<String>,
    experiment_id: Option<String>,
    /// Single-user: every recurring run is in the one namespace.
    #[allow(dead_code)]
    namespace: Option<String>,
}

/// `GET /recurringruns`: `{"recurringRuns": [...], "total_size", "next_page_token"}`.
async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = ListParams {
        page_size: query.page_size,
        page_token: query.page_token,
        sort_by: query.sort_by,
        filter: query.filter,
    }
    .to_request()?;
    let experiment_id = query.experiment_id.filter(|id| !id.is_empty());
    let page = state
        .store
        .list_recurring_runs(&request, experiment_id.as_deref())
        .await?;
    let items: Vec<Value> = page.items.iter().map(recurring_run_json).collect();
    Ok(Json(json!({
        "recurringRuns": items,
        "total_size": page.total_size,
        "next_page_token": page.next_page_token,
    })))
}

/// `GET /recurringruns/{id}`.
async fn get_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recurring_run_id = plain_id(&segment, "GET /recurringruns/{id}")?;
    let record = existing(&state, recurring_run_id).await?;
    Ok(Json(recurring_run_json(&record)))
}

/// `DELETE /recurringruns/{id}`: the schedule goes; the runs it made stay.
async fn delete_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recurring_run_id = plain_id(&segment, "DELETE /recurringruns/{id}")?;
    delete(&state, recurring_run_id).await?;
    Ok(Json(json!({})))
}

/// Deletes a recurring run; once this returns, none of its runs starts any more.
pub(crate) async fn delete(state: &AppState, recurring_run_id: &str) -> Result<(), ApiError> {
    let _firing = FIRING.lock().await;
    state
        .store
        .delete_recurring_run(recurring_run_id)
        .await
        .map_err(|error| not_found_or(error, recurring_run_id))?;
    tracing::info!(recurring_run_id = %recurring_run_id, "recurring run deleted");
    Ok(())
}

/// `POST /recurringruns/{id}:enable` and `:disable`.
async fn action(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (recurring_run_id, action) = split_action(&segment);
    let mode = match action {
        Some("enable") => RecurringRunMode::Enable,
        Some("disable") => RecurringRunMode::Disable,
        Some(other) => {
            return Err(ApiError::not_found(format!(
                "no API route POST /recurringruns/{{id}}:{other}: the recurring run actions \
                 are enable and disable"
            )));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "POST /recurringruns/{recurring_run_id} is not an API route; did you mean \
                     /recurringruns/{recurring_run_id}:enable or :disable?"
                ),
            ));
        }
    };
    set_mode(&state, recurring_run_id, mode).await?;
    Ok(Json(json!({})))
}

/// Enables or disables a recurring run; once disabling returns, none of its runs starts any
/// more.
pub(crate) async fn set_mode(
    state: &AppState,
    recurring_run_id: &str,
    mode: RecurringRunMode,
) -> Result<(), ApiError> {
    let _firing = FIRING.lock().await;
    state
        .store
        .set_recurring_run_mode(recurring_run_id, mode, Utc::now())
        .await
        .map_err(|error| not_found_or(error, recurring_run_id))?;
    tracing::info!(recurring_run_id = %recurring_run_id, mode = mode.as_str(), "recurring run mode set");
    Ok(())
}

pub(crate) async fn existing(
    state: &AppState,
    recurring_run_id: &str,
) -> Result<RecurringRunRecord, ApiError> {
    state
        .store
        .get_recurring_run(recurring_run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("recurring run {recurring_run_id:?} not found")))
}

fn not_found_or(error: coracle_store::Error, recurring_run_id: &str) -> ApiError {
    match error {
        coracle_store::Error::NotFound { .. } => {
            ApiError::not_found(format!("recurring run {recurring_run_id:?} not found"))
        }
        other => other.into(),
    }
}

// ---- the JSON of a recurring run ------------------------------------------------------------

/// A recurring run as the API shows it (`V2beta1RecurringRun`).
pub fn recurring_run_json(record: &RecurringRunRecord) -> Value {
    let mut body = json!({
        "recurring_run_id": record.recurring_run_id,
        "display_name": record.display_name,
        "description": record.description,
        "runtime_config": record.runtime_config,
        "service_account": record.service_account,
        "max_concurrency": record.max_concurrency.to_string(),
        "trigger": record.trigger,
        "mode": record.mode.as_str(),
        "created_at": api_time(&record.created_at),
        "updated_at": api_time(&record.updated_at),
        "status": record.mode.status(),
        "no_catchup": record.no_catchup,
        "namespace": record.namespace,
    });
    if let Some(experiment_id) = &record.experiment_id {
        body["experiment_id"] = json!(experiment_id);
    }
    match (&record.pipeline_spec, &record.pipeline_version_id) {
        (Some(spec), _) => body["pipeline_spec"] = spec.clone(),
        (None, Some(version_id)) => {
            body["pipeline_version_reference"] = json!({
                "pipeline_id": record.pipeline_id,
                "pipeline_version_id": version_id,
            });
        }
        (None, None) => {}
    }
    if let Some(error) = &record.error {
        // gRPC Unknown: the last attempt to start a run failed.
        body["error"] = json!({"code": 2, "message": error, "details": []});
    }
    body
}

// ---- reading request bodies -----------------------------------------------------------------

/// An int64 as the API carries it: a JSON number or a decimal string.
fn int64(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| format!("{number} is not a whole number")),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a whole number")),
        other => Err(format!("expected a whole number, found {}", kind_of(other))),
    }
}

/// An optional time: RFC 3339 text (a time without an offset is UTC); empty is absent.
fn time_field(
    object: &Map<String, Value>,
    names: &[&str],
    at: &str,
) -> Result<Option<DateTime<Utc>>, String> {
    match field(object, names) {
        None => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => {
            let text = text.trim();
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                        .map(|time| time.and_utc())
                })
                .map(Some)
                .map_err(|_| {
                    format!(
                        "{at}.{}: {text:?} is not an RFC 3339 time (like 2024-05-01T09:00:00Z)",
                        names[0]
                    )
                })
        }
        Some(other) => Err(format!(
            "{at}.{}: expected an RFC 3339 time string, found {}",
            names[0],
            kind_of(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn times(texts: &[&str]) -> Vec<DateTime<Utc>> {
        texts.iter().map(|text| time(text)).collect()
    }

    fn trigger(json: Value) -> Trigger {
        Trigger::from_json(&json).unwrap()
    }

    fn cron(text: &str) -> Trigger {
        trigger(json!({"cron_schedule": {"cron": text}}))
    }

    /// The first `n` due times after `after` (as if each fired), catching up.
    fn next_n(trigger: &Trigger, created: &str, n: usize) -> Vec<String> {
        let far = time("2100-01-01T00:00:00Z");
        trigger
            .due_times(None, time(created), far, false, n)
            .iter()
            .map(api_time)
            .collect()
    }

    #[test]
    fn cron_has_seconds_first_and_five_fields_are_classic_cron() {
        // 09:30:15 on weekdays.
        let weekdays = cron("15 30 9 * * 1-5");
        assert_eq!(
            next_n(&weekdays, "2024-05-03T09:30:15Z", 3), // a Friday, at a due time
            [
                "2024-05-06T09:30:15Z",
                "2024-05-07T09:30:15Z",
                "2024-05-08T09:30:15Z"
            ]
        );
        // Five fields: classic cron at second 0; `30 9 * * *` is daily at 09:30:00 and
        // `*/5 * * * *` every five minutes.
        assert_eq!(
            next_n(&cron("30 9 * * *"), "2024-05-01T10:00:00Z", 2),
            ["2024-05-02T09:30:00Z", "2024-05-03T09:30:00Z"]
        );
        assert_eq!(
            next_n(&cron("*/5 * * * *"), "2024-05-01T10:01:00Z", 2),
            ["2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z"]
        );
        // Every 20 seconds; `?` is `*`; names work.
        assert_eq!(
            next_n(&cron("*/20 * * ? * *"), "2024-05-01T00:00:05Z", 3),
            [
                "2024-05-01T00:00:20Z",
                "2024-05-01T00:00:40Z",
                "2024-05-01T00:01:00Z"
            ]
        );
        assert_eq!(
            next_n(&cron("0 0 12 * jan mon"), "2024-01-01T12:00:00Z", 2),
            ["2024-01-08T12:00:00Z", "2024-01-15T12:00:00Z"]
        );
        // Descriptors.
        assert_eq!(
            next_n(&cron("@hourly"), "2024-05-01T10:20:00Z", 2),
            ["2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"]
        );
        assert_eq!(
            next_n(&cron("@daily"), "2024-05-01T10:20:00Z", 1),
            ["2024-05-02T00:00:00Z"]
        );
        assert_eq!(
            next_n(&cron("@every 1m30s"), "2024-05-01T10:20:00.700Z", 2),
            ["2024-05-01T10:21:30Z", "2024-05-01T10:23:00Z"]
        );
        assert_eq!(
            next_n(&cron("@every 300ms"), "2024-05-01T10:20:00Z", 2),
            ["2024-05-01T10:20:01Z", "2024-05-01T10:20:02Z"]
        );
    }

    #[test]
    fn bad_cron_expressions_say_what_is_wrong() {
        for (text, expected) in [
            ("", "empty"),
            ("* * * *", "has 4 fields"),
            ("0 0 0 * * * 2024", "has 7 fields"),
            ("61 * * * * *", "the second field \"61\" is invalid (0-59)"),
            ("0 0 25 * * *", "the hour field \"25\" is invalid (0-23)"),
            ("0 0 * 13 *", "the month field \"13\""),
            ("a b c d e f", "the second field \"a\""),
            ("@fortnightly", "unknown descriptor"),
            ("@every", "needs a duration"),
            ("@every 5", "no unit"),
            ("@every 5y", "unknown unit"),
        ] {
            let error = CronExpression::from_str(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let error = Trigger::from_json(&json!({"cron_schedule": {"cron": "* *"}})).unwrap_err();
        assert!(
            error.starts_with("trigger.cron_schedule.cron: invalid cron expression"),
            "{error}"
        );
    }

    #[test]
    fn periodic_triggers_count_from_the_last_run_else_start_else_creation() {
        let every_hour = trigger(json!({"periodic_schedule": {"interval_second": "3600"}}));
        let created = time("2024-05-01T10:00:00.900Z");
        let now = time("2024-05-01T12:30:00Z");
        // Never fired: one interval after creation (whole seconds), then catching up.
        assert_eq!(
            every_hour.due_times(None, created, now, false, 10),
            times(&["2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"])
        );
        assert_eq!(
            every_hour.next_due(Some(time("2024-05-01T12:00:00Z")), created, now, false),
            Some(time("2024-05-01T13:00:00Z"))
        );
        // A start time counts instead of the creation, even one in the past.
        let from_start = trigger(json!({"periodic_schedule": {
            "interval_second": 3600, "start_time": "2024-05-01T08:15:00Z"}}));
        assert_eq!(
            from_start.due_times(None, created, now, false, 10),
            times(&[
                "2024-05-01T09:15:00Z",
                "2024-05-01T10:15:00Z",
                "2024-05-01T11:15:00Z",
                "2024-05-01T12:15:00Z"
            ])
        );
        // A start time in the future: nothing before it.
        let later = trigger(json!({"periodic_schedule": {
            "interval_second": "60", "start_time": "2024-05-02T00:00:00Z"}}));
        assert_eq!(
            later.due_times(None, created, now, false, 10),
            Vec::<DateTime<Utc>>::new()
        );
        assert_eq!(
            later.next_due(None, created, now, false),
            Some(time("2024-05-02T00:01:00Z"))
        );
        // An end time: nothing after it, ever.
        let ending = trigger(json!({"periodic_schedule": {
            "interval_second": "3600", "end_time": "2024-05-01T12:00:00Z"}}));
        assert_eq!(
            ending.due_times(None, created, now, false, 10),
            times(&["2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"])
        );
        assert_eq!(
            ending.next_due(Some(time("2024-05-01T12:00:00Z")), created, now, false),
            None
        );
    }

    #[test]
    fn cron_triggers_respect_start_and_end() {
        let hourly = trigger(json!({"cron_schedule": {"cron": "0 0 * * * *",
            "start_time": "2024-05-01T09:30:00Z", "end_time": "2024-05-01T12:00:00Z"}}));
        let created = time("2024-05-01T08:00:00Z");
        assert_eq!(
            hourly.due_times(None, created, time("2024-05-02T00:00:00Z"), false, 10),
            times(&[
                "2024-05-01T10:00:00Z",
                "2024-05-01T11:00:00Z",
                "2024-05-01T12:00:00Z"
            ])
        );
        // Not due yet.
        assert_eq!(
            hourly.due_times(None, created, time("2024-05-01T09:59:59Z"), false, 10),
            Vec::<DateTime<Utc>>::new()
        );
    }

    #[test]
    fn catching_up_fires_every_missed_time_and_no_catchup_only_the_latest() {
        let created = time("2024-05-01T00:00:00Z");
        let last = Some(time("2024-05-01T10:00:00Z"));
        // Down from 10:00 to 13:10.
        let now = time("2024-05-01T13:10:00Z");

        let hourly = cron("0 0 * * * *");
        assert_eq!(
            hourly.due_times(last, created, now, false, 10),
            times(&[
                "2024-05-01T11:00:00Z",
                "2024-05-01T12:00:00Z",
                "2024-05-01T13:00:00Z"
            ])
        );
        assert_eq!(
            hourly.due_times(last, created, now, true, 10),
            times(&["2024-05-01T13:00:00Z"])
        );
        // Not behind: the same either way.
        assert_eq!(
            hourly.due_times(last, created, time("2024-05-01T11:00:05Z"), true, 10),
            times(&["2024-05-01T11:00:00Z"])
        );
        // No catch-up with an end time inside the gap: the last time before the end.
        let ending = trigger(json!({"cron_schedule": {"cron": "0 0 * * * *",
            "end_time": "2024-05-01T12:30:00Z"}}));
        assert_eq!(
            ending.due_times(last, created, now, true, 10),
            times(&["2024-05-01T12:00:00Z"])
        );
        let every = cron("@every 1h");
        assert_eq!(
            every.due_times(last, created, now, true, 10),
            times(&["2024-05-01T13:00:00Z"])
        );

        let periodic = trigger(json!({"periodic_schedule": {"interval_second": "3600"}}));
        assert_eq!(
            periodic.due_times(last, created, now, false, 10),
            times(&[
                "2024-05-01T11:00:00Z",
                "2024-05-01T12:00:00Z",
                "2024-05-01T13:00:00Z"
            ])
        );
        // More than one interval behind: fires now, and counts on from now.
        assert_eq!(
            periodic.due_times(last, created, now, true, 10),
            times(&["2024-05-01T13:10:00Z"])
        );
        assert_eq!(
            periodic.next_due(Some(now), created, now, true),
            Some(time("2024-05-01T14:10:00Z"))
        );
        // Less than that: the due time itself.
        assert_eq!(
            periodic.due_times(last, created, time("2024-05-01T11:30:00Z"), true, 10),
            times(&["2024-05-01T11:00:00Z"])
        );
    }

    #[test]
    fn max_concurrency_limits_how_many_fire_and_the_rest_wait() {
        let created = time("2024-05-01T00:00:00Z");
        let now = time("2024-05-01T00:00:10Z");
        let every_second = trigger(json!({"periodic_schedule": {"interval_second": 1}}));
        assert_eq!(free_slots(3, 0), 3);
        assert_eq!(free_slots(3, 2), 1);
        assert_eq!(free_slots(3, 5), 0);
        assert_eq!(free_slots(0, 0), 1);
        assert_eq!(free_slots(99, 0), 10);
        // Two slots: the two oldest due times fire...
        let first = every_second.due_times(None, created, now, false, free_slots(2, 0));
        assert_eq!(
            first,
            times(&["2024-05-01T00:00:01Z", "2024-05-01T00:00:02Z"])
        );
        // ...none while both run...
        assert_eq!(
            every_second.due_times(first.last().copied(), created, now, false, free_slots(2, 2)),
            Vec::<DateTime<Utc>>::new()
        );
        // ...and the next ones, not lost, once one ends.
        assert_eq!(
            every_second.due_times(first.last().copied(), created, now, false, free_slots(2, 1)),
            times(&["2024-05-01T00:00:03Z"])
        );
    }

    #[test]
    fn a_trigger_with_no_schedule_fires_once_at_creation() {
        let once = trigger(json!({}));
        let created = time("2024-05-01T00:00:00.5Z");
        let now = time("2024-05-01T00:00:03Z");
        assert_eq!(
            once.due_times(None, created, now, false, 10),
            times(&["2024-05-01T00:00:00Z"])
        );
        assert_eq!(
            once.next_due(Some(time("2024-05-01T00:00:00Z")), created, now, false),
            None
        );
    }

    #[test]
    fn triggers_round_trip_through_the_api_shape() {
        let json = json!({"periodic_schedule": {"interval_second": 90,
            "start_time": "2024-05-01T00:00:00+02:00", "end_time": ""}});
        assert_eq!(
            trigger(json).to_json(),
            json!({"periodic_schedule": {"interval_second": "90",
                "start_time": "2024-04-30T22:00:00Z"}})
        );
        let json = json!({"cronSchedule": {"cron": " 0 0 * * * * ",
            "endTime": "2024-05-01T00:00:00"}});
        assert_eq!(
            trigger(json).to_json(),
            json!({"cron_schedule": {"cron": "0 0 * * * *", "end_time": "2024-05-01T00:00:00Z"}})
        );
        assert_eq!(trigger(Value::Null).to_json(), json!({}));
        for (json, expected) in [
            (
                json!({"periodic_schedule": {"interval_second": "0"}}),
                "at least 1 second, got 0",
            ),
            (
                json!({"periodic_schedule": {"interval_second": -5}}),
                "at least 1 second, got -5",
            ),
            (
                json!({"periodic_schedule": {"interval_second": "ten"}}),
                "\"ten\" is not a whole number",
            ),
            (
                json!({"periodic_schedule": {}}),
                "interval_second: the interval is missing",
            ),
            (
                json!({"periodic_schedule": {"interval_second": 5, "start_time": "tomorrow"}}),
                "periodic_schedule.start_time: \"tomorrow\" is not an RFC 3339 time",
            ),
            (
                json!({"cron_schedule": {}}),
                "cron_schedule.cron: the cron expression is missing",
            ),
            (
                json!({"cron_schedule": {"cron": "@daily"}, "periodic_schedule": {"interval_second": 5}}),
                "not both",
            ),
            (json!([]), "expected an object"),
        ] {
            let error = Trigger::from_json(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
