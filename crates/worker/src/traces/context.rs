//! The plan's trace: its root `traceparent` is made by the first hold of a worker that exports
//! traces and kept in the plan hash (`trace`, set once by `acquire.lua`), and every hold of the
//! plan, on any worker and after any restart, is a child of it. An attempt's span context is
//! what its CLI run gets as `TRACEPARENT`.

use baton_core::records::StoredTask;
use baton_core::PlanId;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{on, TRACER};

/// A root `traceparent` this hold offers the plan (kept only if the plan has none yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Root(String);

impl Root {
    /// A new root, when this worker exports traces.
    pub(crate) fn candidate() -> Option<Self> {
        on().then(|| {
            let trace = uuid::Uuid::new_v4().simple().to_string();
            let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
            Self(format!("00-{trace}-{span}-01"))
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A W3C `traceparent` (version 00) read as a remote span context.
fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Puts the hold's `span` (not entered yet) in the plan's trace: a child of the root `stored`
/// in the plan hash. When the root is `ours` (this hold made it), the root span is exported
/// first, with the same ids. Nothing when this worker exports no traces.
pub(crate) fn join_plan(span: &Span, plan: &PlanId, stored: Option<&str>, ours: Option<&Root>) {
    if !on() {
        return;
    }
    span.set_attribute("baton.plan_id", plan.to_string());
    let Some(root) = stored.and_then(parse) else {
        return;
    };
    if ours.is_some_and(|r| Some(r.as_str()) == stored) {
        if let Some(tracer) = TRACER.get() {
            let mut s = tracer
                .span_builder("plan")
                .with_trace_id(root.trace_id())
                .with_span_id(root.span_id())
                .with_attributes([KeyValue::new("baton.plan_id", plan.to_string())])
                .start(tracer);
            opentelemetry::trace::Span::end(&mut s);
        }
    }
    let _ = span.set_parent(Context::new().with_remote_span_context(root));
}

/// Sets the task's attributes on a task's or an attempt's `span`: `baton.plan_id`,
/// `baton.task_id`, `baton.task_index`, and `baton.attempt` (1-based) for an attempt. Nothing
/// when this worker exports no traces.
pub(crate) fn mark_task(span: &Span, plan: &PlanId, task: &StoredTask, attempt: Option<u32>) {
    if !on() {
        return;
    }
    span.set_attribute("baton.plan_id", plan.to_string());
    span.set_attribute("baton.task_id", task.id.to_string());
    let index = i64::try_from(task.index).unwrap_or(-1);
    span.set_attribute("baton.task_index", index);
    if let Some(n) = attempt {
        span.set_attribute("baton.attempt", i64::from(n));
    }
}

/// The `traceparent` of `span` (an attempt's: what its CLI gets), when this worker exports
/// traces.
pub(crate) fn traceparent(span: &Span) -> Option<String> {
    if !on() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_traceparent_reads_only_in_its_own_shape() {
        let sc = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
