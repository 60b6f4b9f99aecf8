//! Exports that are files rather than server functions: a maintenance window as CSV, one row per
//! mirror (the JSON form is `GET /api/maintenance/window`).

use app::state::AppState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use quiesce_core::auth::Action;
use quiesce_core::domain::WindowDetail;
use quiesce_core::maintenance::MaintenanceError;
use tower_sessions::Session;

#[derive(serde::Deserialize)]
pub struct WindowQuery {
    id: String,
}

/// Quotes a CSV field when it needs it (RFC 4180), after defusing formulas: a spreadsheet runs a
/// cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a
/// formula, and a reason or error text is typed by people. Such cells get a leading `'`, which
/// spreadsheets show as text (OWASP "CSV injection").
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn window_csv_text(d: &WindowDetail) -> String {
    let w = &d.window;
    let mut out = String::from(
        "window_id,reason,requested_by,window_phase,mirror,status_before,paused_at,checkpoint_at_pause,\
         outcome,outcome_detail,released_at,checkpoint_at_resume\n",
    );
    for e in &d.mirrors {
        let row = [
            w.id.clone(),
            w.reason.clone(),
            w.requested_by.clone(),
            w.phase.to_string(),
            e.mirror_name.clone(),
            e.status_before.to_string(),
            e.paused_at.to_rfc3339(),
            e.checkpoint_at_pause.describe(&e.config.tables),
            e.outcome.map(|o| o.to_string()).unwrap_or_default(),
            e.outcome_detail.clone().unwrap_or_default(),
            e.released_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            e.checkpoint_at_resume.as_ref().map(|c| c.describe(&e.config.tables)).unwrap_or_default(),
        ];
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

pub async fn window_csv(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<WindowQuery>,
) -> Response {
    match app::auth::session_user(&session, &state).await {
        Ok(Some(u)) if u.role.may(Action::View) && !u.must_change_password => {}
        Ok(Some(_)) => return StatusCode::FORBIDDEN.into_response(),
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    match state.maintenance.orchestrator.window_detail(&q.id).await {
        Ok(d) => {
            let name = format!(
                "attachment; filename=\"window-{}.csv\"",
                d.window.id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                window_csv_text(&d),
            )
                .into_response()
        }
        Err(MaintenanceError::NotFound(m)) => (StatusCode::NOT_FOUND, m).into_response(),
        Err(e) => {
            tracing::error!(error = %e, window.id = %q.id, "CSV export failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_with_commas_quotes_or_newlines_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_defused() {
        assert_eq!(field("=HYPERLINK(\"http://evil\")"), "\"'=HYPERLINK(\"\"http://evil\"\")\"");
        assert_eq!(field("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\t=1"), "'\t=1");
        assert_eq!(field("\r=1"), "\"'\r=1\"");
        assert_eq!(field("2026-12-01T10:00:00+00:00"), "2026-12-01T10:00:00+00:00");
    }
}
