//! `xvrrp events` (alias `subscribe`): the daemon's event stream, one line
//! per event, as it happens, until the daemon stops or the user interrupts.

use std::{io::Write, path::Path};

use serde_json::Value;
use xvrrp_control::ctl_socket;

/// Subscribes and prints each event: readable by default, the daemon's
/// JSON line with `as_json`.
///
/// # Errors
/// The daemon cannot be reached or refuses, the stream breaks, or stdout
/// is closed.
pub fn run(socket: &Path, as_json: bool) -> anyhow::Result<()> {
    let events = ctl_socket::subscribe(socket).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    for event in events {
        let event = event.map_err(|e| anyhow::anyhow!("{e}"))?;
        let line = if as_json {
            event.to_string()
        } else {
            human(&event)
        };
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

/// One event as a line: `TIME #SEQ KIND INSTANCE: what happened`, with
/// the fields of kinds it does not know as `key=value`.
fn human(event: &Value) -> String {
    let field = |k: &str| match event.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".to_owned(),
    };
    let kind = field("event");
    let head = format!("{} #{} {kind}", field("time"), field("seq"));
    let what = match kind.as_str() {
        "transition" => format!(
            "{}: {} -> {} ({}, priority {})",
            field("instance"),
            field("from"),
            field("to"),
            field("reason"),
            field("priority")
        ),
        "priority" => format!(
            "{}: priority {} (configured {})",
            field("instance"),
            field("priority"),
            field("configured")
        ),
        _ => match event {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "event" | "time" | "seq" | "mono"))
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        },
    };
    format!("{head} {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_for_each_kind() {
        let t = json!({"event": "transition", "instance": "lan-gw", "from": "backup",
            "to": "master", "reason": "MasterDown", "priority": 100, "seq": 3,
            "mono": 1.5, "time": "2026-12-02T11:40:01.123Z"});
        assert_eq!(
            human(&t),
            "2026-12-02T11:40:01.123Z #3 transition lan-gw: backup -> master (MasterDown, priority 100)"
        );
        let p = json!({"event": "priority", "instance": "wan-gw", "priority": 50,
            "configured": 200, "seq": 4, "mono": 2.0, "time": "T"});
        assert_eq!(
            human(&p),
            "T #4 priority wan-gw: priority 50 (configured 200)"
        );
        let d = json!({"event": "drain", "instance": "lan-gw", "seq": 5, "mono": 3.0, "time": "T"});
        assert_eq!(human(&d), "T #5 drain instance=lan-gw");
    }
}
