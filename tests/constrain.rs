//! Grammar-constrained generation (`response_format`): whatever the model prefers, the answer parses
//! and validates. Checked against independent validators: serde_json's parser, the `jsonschema`
//! crate natively, and a hand check of the test schema's rules on both targets. A tiny random-weight
//! model (no preference for JSON at all) samples at temperature 1 under a schema with bounded
//! fields, so every seed must finish with the end-of-sequence token; natively SmolLM2 also answers a
//! chat prompt as a JSON object (greedy) and under a schema (sampled).
mod common;

use common::gpu;
use serde_json::{Value, json};
use webgpu_infer::kernels::sample::Sampling;
use webgpu_infer::models::constrain::ResponseFormat;
use webgpu_infer::models::generate::{GenerateOptions, Generator, StopReason};
use webgpu_infer::{Error, Result};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const TINY: &str = "tests/fixtures/tiny-gguf/tiny-kquants.gguf";

/// Every field bounded (enums, one digit, at most two items): a document always ends.
fn bounded_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "answer": {"enum": ["yes", "no", "maybe"]},
            "score": {"type": "integer", "minimum": 0, "maximum": 9},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}
        },
        "required": ["answer", "score", "ok", "tags"],
        "additionalProperties": false
    })
}

/// `bounded_schema`'s rules, checked by hand (the browser has no JSON Schema validator here).
fn check_bounded(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{text:?} is not an object"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["answer", "ok", "score", "tags"], "{text:?}");
    assert!(
        ["yes", "no", "maybe"].contains(&o["answer"].as_str().unwrap_or("?")),
        "{text:?}"
    );
    assert!(o["score"].as_u64().is_some_and(|s| s <= 9), "{text:?}");
    assert!(o["ok"].is_boolean(), "{text:?}");
    let tags = o["tags"].as_array().unwrap_or_else(|| panic!("{text:?}"));
    assert!(tags.len() <= 2, "{text:?}");
    assert!(tags.iter().all(|t| t == "a" || t == "b"), "{text:?}");
}

/// The JSON Schema validator's verdict (natively).
#[cfg(not(target_arch = "wasm32"))]
fn validate(schema: &Value, text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{text:?} against {schema}: {errors:?}");
}
#[cfg(target_arch = "wasm32")]
fn validate(_: &Value, _: &str) {}

async fn tiny() -> Result<Generator> {
    let gpu = gpu().await?;
    #[cfg(not(target_arch = "wasm32"))]
    return Generator::from_path(&gpu, TINY.as_ref(), &mut |_| {});
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load_gguf};
        let (header, weights) =
            load_gguf(&gpu, Source::Url(format!("/{TINY}")), None, &mut |_| {}).await?;
        Generator::from_gguf(&gpu, TINY, &header, &weights)
    }
}

async fn random_model_validates() -> Result<()> {
    let g = tiny().await?;
    let schema = bounded_schema();
    let seeds = if cfg!(target_arch = "wasm32") {
        1..3
    } else {
        1..9
    };
    for seed in seeds {
        let opts = GenerateOptions {
            max_tokens: 64,
            sampling: Sampling {
                temperature: 1.0,
                seed,
                ..Sampling::default()
            },
            response_format: Some(ResponseFormat::JsonSchema(schema.clone())),
            ..GenerateOptions::default()
        };
        let r = g
            .generate("Hello, tiny model, hello", &opts, &mut |_| true)
            .await?;
        assert_eq!(r.stop_reason, StopReason::Eos, "seed {seed}: {:?}", r.text);
        check_bounded(&r.text);
        validate(&schema, &r.text);
    }
    // Unconstrained, the same model and seed write no JSON: the constraint is what made it.
    let free = GenerateOptions {
        max_tokens: 12,
        sampling: Sampling {
            temperature: 1.0,
            seed: 1,
            ..Sampling::default()
        },
        ..GenerateOptions::default()
    };
    let r = g
        .generate("Hello, tiny model, hello", &free, &mut |_| true)
        .await?;
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "{:?}",
        r.text
    );
    Ok(())
}
gpu_test!(
    a_random_model_under_a_schema_writes_valid_json,
    random_model_validates
);

async fn refusals() -> Result<()> {
    let g = tiny().await?;
    let input_error = |r: Result<_>, what: &str| match r {
        Err(Error::Input(m)) => assert!(m.contains("response_format"), "{what}: {m}"),
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    };
    let run = |opts: GenerateOptions| {
        let g = &g;
        async move { g.generate("Hi", &opts, &mut |_| true).await.map(|r| r.text) }
    };
    let bad_schema = GenerateOptions {
        response_format: Some(ResponseFormat::JsonSchema(
            json!({"type": "object", "properties": {"a": {"type": "nonsense"}}}),
        )),
        ..GenerateOptions::default()
    };
    input_error(run(bad_schema).await, "an unknown type");
    let no_eos = GenerateOptions {
        stop_at_eos: false,
        response_format: Some(ResponseFormat::JsonObject),
        ..GenerateOptions::default()
    };
    input_error(run(no_eos).await, "stop_at_eos off");
    // OpenAI's request shapes.
    assert_eq!(
        ResponseFormat::from_openai(&json!({"type": "text"})).ok(),
        Some(None)
    );
    assert_eq!(
        ResponseFormat::from_openai(&json!({"type": "json_object"})).ok(),
        Some(Some(ResponseFormat::JsonObject))
    );
    let schema = json!({"type": "object"});
    assert_eq!(
        ResponseFormat::from_openai(&json!({"type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": true}}))
        .ok(),
        Some(Some(ResponseFormat::JsonSchema(schema)))
    );
    input_error(
        ResponseFormat::from_openai(&json!({"type": "json_schema"})).map(|_| String::new()),
        "json_schema without a schema",
    );
    input_error(
        ResponseFormat::from_openai(&json!({"type": "xml"})).map(|_| String::new()),
        "an unknown type",
    );
    Ok(())
}
gpu_test!(bad_response_formats_are_refused, refusals);

/// SmolLM2-135M-Instruct asked for JSON: greedy under `json_object`, sampled under a schema.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn smollm2_answers_in_json() -> Result<()> {
    pollster::block_on(async {
        let gpu = gpu().await?;
        let g = Generator::from_path(
            &gpu,
            "models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(),
            &mut |_| {},
        )?;
        let opts = GenerateOptions {
            max_tokens: 96,
            chat: true,
            response_format: Some(ResponseFormat::JsonObject),
            ..GenerateOptions::default()
        };
        let prompt = "Describe Paris as a JSON object with its country and population.";
        let r = g.generate(prompt, &opts, &mut |_| true).await?;
        assert_eq!(r.stop_reason, StopReason::Eos, "{:?}", r.text);
        let v: Value =
            serde_json::from_str(&r.text).unwrap_or_else(|e| panic!("{:?}: {e}", r.text));
        assert!(v.is_object(), "{:?}", r.text);
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "country": {"enum": ["France", "Italy", "Spain"]},
                "population": {"type": "integer", "minimum": 0, "maximum": 100000000}
            },
            "required": ["city", "country", "population"],
            "additionalProperties": false
        });
        for seed in [3, 4] {
            let opts = GenerateOptions {
                max_tokens: 64,
                chat: true,
                sampling: Sampling {
                    temperature: 0.8,
                    seed,
                    ..Sampling::default()
                },
                response_format: Some(ResponseFormat::JsonSchema(schema.clone())),
                ..GenerateOptions::default()
            };
            let r = g.generate(prompt, &opts, &mut |_| true).await?;
            assert_eq!(r.stop_reason, StopReason::Eos, "seed {seed}: {:?}", r.text);
            validate(&schema, &r.text);
        }
        Ok(())
    })
}
