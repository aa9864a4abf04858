//! Structured answers (task field `json_schema`): the schema is checked when its document is
//! ingested, the CLI is run with `--json-schema`, and the answer the CLI returns
//! (`structured_output`) is checked again by the worker before the task may commit.

use serde_json::Value;

/// Largest schema accepted, as JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// Checks that `schema` is a JSON Schema a worker can validate answers with.
///
/// # Errors
/// What is wrong, for the document's dead letter.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if !schema.is_object() {
        return Err("must be a JSON Schema object, such as {\"type\": \"object\", ...}".into());
    }
    let len = schema.to_string().len();
    if len > MAX_SCHEMA_BYTES {
        return Err(format!("is {len} bytes; the limit is {MAX_SCHEMA_BYTES}"));
    }
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| format!("is not a valid JSON Schema: {e}"))
}

/// Checks an answer against its task's schema: `None` when the CLI returned none.
///
/// # Errors
/// Why the answer does not do (at most the first three problems, each with its place).
pub fn check_answer(schema: &Value, answer: Option<&Value>) -> Result<(), String> {
    let Some(answer) = answer else {
        return Err(
            "the model returned no structured answer (it did not call the StructuredOutput tool)"
                .into(),
        );
    };
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(answer)
        .take(3)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the structured answer {answer} does not match the schema: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_and_answers_are_checked_with_their_problems_named() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
        assert!(check_schema(&schema).is_ok());
        assert!(check_schema(&json!("string"))
            .unwrap_err()
            .contains("object"));
        assert!(check_schema(&json!({"type": 12}))
            .unwrap_err()
            .contains("not a valid"));
        assert!(check_answer(&schema, Some(&json!({"name": "Ada"}))).is_ok());
        let e = check_answer(&schema, Some(&json!({"name": 5}))).unwrap_err();
        assert!(e.contains("/name") && e.contains("string"), "{e}");
        let e = check_answer(&schema, Some(&json!({}))).unwrap_err();
        assert!(e.contains("name"), "{e}");
        assert!(check_answer(&schema, None)
            .unwrap_err()
            .contains("StructuredOutput"));
    }
}
