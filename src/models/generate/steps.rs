//! Running a generation: the prompt's step, then decoding steps submitted ahead of the read-backs of
//! their ids (or one at a time under a grammar), and the text as it comes.

use std::collections::VecDeque;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::sample::{Penalty, argmax_parts, sample_masked, seen_tokens};
use crate::models::chat::ChatSession;
use crate::models::constrain::{Constraint, Grammars, ResponseFormat};
use crate::models::llama::{KvCache, Llama};
use crate::models::ops::DecoderOps;
use crate::recorder::Readback;
use crate::tensor::{DType, Tensor};

use super::{
    Engine, GenerateOptions, Generation, GenerationStats, Generator, RUN_AHEAD_CPU, RUN_AHEAD_GPU,
    StopReason,
};

impl Generator {
    /// A fresh grammar state for `format` (the vocabulary's trie built on first use).
    pub(super) fn constraint(&self, format: &ResponseFormat) -> Result<Constraint> {
        let grammars = match self.grammars.get() {
            Some(g) => g,
            None => {
                let g = Grammars::new(&self.tokenizer, &self.eos_ids)?;
                self.grammars.get_or_init(|| g)
            }
        };
        grammars.constraint(format, self.config().vocab_size)
    }

    /// Generation, in a [`ChatSession`]'s KV cache when given: the prompt's positions that the cache
    /// already holds (the longest common prefix with what was fed before) are not computed again.
    pub(crate) async fn generate_in(
        &self,
        session: Option<&mut ChatSession>,
        prompt_ids: Vec<u32>,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let start = now_ms();
        self.check(&prompt_ids, opts)?;
        let (gpu, model) = match &self.engine {
            Engine::Gpu(gpu, model) => (gpu, model),
            Engine::Cpu(cpu, model) => {
                return self
                    .generate_host((cpu, model), session, prompt_ids, opts, on_piece)
                    .await;
            }
        };
        // The cache holds the prompt and every token but the last (which is never fed back).
        let capacity = (prompt_ids.len() + opts.max_tokens).min(self.context);
        let mut fresh = None;
        let session = session.map(|s| {
            s.host_cache = None; // the fed ids describe one cache: this engine's
            (&mut s.cache, &mut s.fed)
        });
        let (cache, fed_before, reused) =
            self.open_cache(session, &mut fresh, &prompt_ids, capacity, |n| {
                model.new_cache(gpu, n)
            })?;
        // The tokens the repetition penalty applies to: the prompt's, then each chosen one.
        let seen = (opts.repetition_penalty != 1.0)
            .then(|| seen_tokens(gpu, &prompt_ids, model.config().vocab_size))
            .transpose()?;
        let penalty = seen.as_ref().map(|seen| Penalty {
            seen,
            repetition_penalty: opts.repetition_penalty,
        });
        let t = now_ms();
        let constraint = match &opts.response_format {
            Some(format) => Some(self.constraint(format)?),
            None => None,
        };
        let compile_ms = now_ms() - t;
        let before = gpu.stats();
        let mut steps = Steps::new((gpu, model), opts, cache, capacity, penalty, constraint);
        steps.grammar_ms = compile_ms;
        let logits = steps.prefill(&prompt_ids[reused..])?;
        let mut out = Output::new(self, opts);
        let mut first_step_top_logits = Vec::new();
        let mut first_ms = None;
        let mut logits_bytes = 0; // the optional first-step logits, not part of a token's cost
        let mut token_ms = Vec::with_capacity(opts.max_tokens.min(capacity));
        let stop_reason = loop {
            let Some(id) = steps.next_id().await? else {
                break if steps.submitted >= opts.max_tokens {
                    StopReason::MaxTokens
                } else {
                    StopReason::ContextFull
                };
            };
            if first_ms.is_none() {
                first_ms = Some(now_ms());
                if opts.top_logits > 0 {
                    first_step_top_logits =
                        top_logits(&logits.to_f32_vec().await?, opts.top_logits);
                    logits_bytes = logits.size_in_bytes();
                }
            }
            token_ms.push(now_ms() - start);
            if let Some(reason) = out.push(id, on_piece)? {
                // Steps still in flight are dropped: their ids are never read.
                break reason;
            }
            steps.chosen(id)?;
        };
        keep_for_next_turn(steps.cache, fed_before, &prompt_ids, &out.ids);
        let mut stats = stats_of(
            &prompt_ids,
            reused,
            out.ids.len(),
            start,
            first_ms,
            (after_bytes(gpu) - before.gpu_to_host_bytes - logits_bytes) as f64,
        );
        (stats.record_ms, stats.wait_ms) = (steps.record_ms, steps.wait_ms);
        stats.grammar_ms = steps.grammar_ms;
        Ok(Generation {
            prompt_ids,
            text: out.text,
            ids: out.ids,
            stop_reason,
            first_step_top_logits,
            stats,
            token_ms,
        })
    }

    /// The KV cache a generation of `prompt_ids` writes: a new one of `capacity` positions (kept in
    /// `fresh`), or the session's (its cache and fed ids; a cache of the generator's whole context),
    /// truncated to the prompt's longest common prefix with what the session fed before. Returns
    /// it, the session's fed ids (already truncated likewise), and how many prompt positions it holds.
    pub(super) fn open_cache<'s, O: DecoderOps>(
        &self,
        session: Option<(&'s mut Option<KvCache<O>>, &'s mut Vec<u32>)>,
        fresh: &'s mut Option<KvCache<O>>,
        prompt_ids: &[u32],
        capacity: usize,
        new_cache: impl Fn(usize) -> Result<KvCache<O>>,
    ) -> Result<OpenCache<'s, O>> {
        let (cache, mut fed_before) = match session {
            None => (fresh.insert(new_cache(capacity)?), None),
            Some((cache, fed)) => {
                if cache.as_ref().is_none_or(|c| c.capacity() != self.context) {
                    *cache = None;
                    fed.clear();
                }
                let cache = match cache {
                    Some(c) => c,
                    None => cache.insert(new_cache(self.context)?),
                };
                (cache, Some(fed))
            }
        };
        // At least the last prompt token is fed: its logits sample the first new token.
        let reused = fed_before.as_ref().map_or(0, |fed| {
            common_prefix(fed, prompt_ids).min(prompt_ids.len() - 1)
        });
        cache.truncate(reused);
        // Positions past `reused` are overwritten from here on: forget their ids now, so that a
        // generation that fails half-way leaves no stale ids for the next one to trust.
        if let Some(fed) = fed_before.as_mut() {
            fed.truncate(reused);
        }
        Ok((cache, fed_before, reused))
    }
}

/// [`Generator::open_cache`]'s answer: the cache, the session's fed ids, the positions reused.
pub(super) type OpenCache<'s, O> = (&'s mut KvCache<O>, Option<&'s mut Vec<u32>>, usize);

/// What the cache holds after a generation, for the next turn: the prompt and every new token but
/// the last (steps run ahead past the end are forgotten); a session's fed ids say the same.
pub(super) fn keep_for_next_turn<O: DecoderOps>(
    cache: &mut KvCache<O>,
    fed: Option<&mut Vec<u32>>,
    prompt_ids: &[u32],
    new_ids: &[u32],
) {
    let kept = prompt_ids.len() + new_ids.len().saturating_sub(1);
    cache.truncate(kept);
    if let Some(fed) = fed {
        fed.clear();
        fed.extend(prompt_ids.iter().chain(new_ids).take(kept));
    }
}

/// Natively, `WEBGPU_INFER_STEPS_PER_SUBMIT=N`: [`GenerateOptions::steps_per_submit`]'s default
/// (else 1: a submit a step), for A/B runs of the GPU's idle time between submits.
static STEPS_PER_SUBMIT: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_STEPS_PER_SUBMIT");

/// The steps of one generation on the GPU: those submitted, and the read-backs of their token ids.
/// Each step reads the previous step's token on the GPU, so steps can be submitted before the ids
/// before them are read: read-backs go in batches that grow 1, 2, 4 ... up to the run-ahead depth
/// (the first ids come back at once, later ones many a round trip), and the next batch is recorded
/// while one travels. A constrained generation submits no step ahead: each is recorded once the last
/// id is known, since its mask depends on it.
struct Steps<'a> {
    gpu: &'a Gpu,
    model: &'a Llama,
    opts: &'a GenerateOptions,
    cache: &'a mut KvCache,
    capacity: usize,
    penalty: Option<Penalty<'a>>,
    constraint: Option<Constraint>,
    /// The last step's choice (on the GPU): the next step's input.
    token: Option<Tensor>,
    /// Steps submitted whose ids are not read yet, oldest first; the oldest `mapped` of them have
    /// their read-backs started.
    in_flight: VecDeque<Readback>,
    mapped: usize,
    /// Steps recorded but not submitted yet (their read-backs the last of `in_flight`), and how
    /// many steps go into one submit at most.
    open: Option<crate::Recorder>,
    unsubmitted: usize,
    per_submit: usize,
    /// Steps submitted so far (each samples one token).
    submitted: usize,
    batch: usize,
    depth: usize,
    record_ms: f64,
    wait_ms: f64,
    grammar_ms: f64,
}

impl<'a> Steps<'a> {
    fn new(
        (gpu, model): (&'a Gpu, &'a Llama),
        opts: &'a GenerateOptions,
        cache: &'a mut KvCache,
        capacity: usize,
        penalty: Option<Penalty<'a>>,
        constraint: Option<Constraint>,
    ) -> Self {
        let depth = match opts.run_ahead {
            0 if gpu.capabilities().cpu_kernels => RUN_AHEAD_CPU,
            0 => RUN_AHEAD_GPU,
            n => n,
        };
        Steps {
            gpu,
            model,
            opts,
            cache,
            capacity,
            penalty,
            constraint,
            token: None,
            in_flight: VecDeque::new(),
            mapped: 0,
            open: None,
            unsubmitted: 0,
            per_submit: match opts.steps_per_submit {
                0 => STEPS_PER_SUBMIT.get().unwrap_or(1).max(1),
                n => n,
            },
            submitted: 0,
            batch: 1,
            depth,
            record_ms: 0.0,
            wait_ms: 0.0,
            grammar_ms: 0.0,
        }
    }

    /// The next step's allowed-token bitset under the grammar, uploaded (none unconstrained), timed.
    fn mask(&mut self) -> Result<Option<Tensor>> {
        let Some(c) = self.constraint.as_mut() else {
            return Ok(None);
        };
        let t = now_ms();
        let words = c.mask()?;
        self.grammar_ms += now_ms() - t;
        let bits = Tensor::from_bytes(
            self.gpu,
            bytemuck::cast_slice(&words),
            &[1, words.len()],
            DType::I32,
        )?;
        Ok(Some(bits))
    }

    /// Records one step (the model on `input`, then the choice of the next token among `allowed`
    /// when given) and submits it with the new id's read-back; returns its logits.
    /// The step goes into the open recorder (steps not yet submitted), or a new one: [`Steps::flush`]
    /// submits it.
    fn step(&mut self, input: &Tensor, allowed: Option<&Tensor>) -> Result<Tensor> {
        // Greedy without a penalty or a mask: the argmax of the LM head's workgroups' maxima where
        // the model has them (an eighth of the logits read). Natively `WEBGPU_INFER_ARGMAX_PARTS=0`
        // reads the logits, for A/B runs.
        static PARTS: crate::kernels::Tuned =
            crate::kernels::Tuned::new("WEBGPU_INFER_ARGMAX_PARTS");
        let greedy = self.opts.sampling.temperature <= 0.0
            && self.penalty.is_none()
            && allowed.is_none()
            && PARTS.get() != Some(0);
        let mut rec = self.open.take().unwrap_or_else(|| self.gpu.recorder());
        let (logits, parts) = self
            .model
            .forward_parts(&mut rec, input, self.cache, greedy)?;
        let token = match parts {
            Some(parts) => argmax_parts(&mut rec, &parts)?,
            None => sample_masked(
                &mut rec,
                &logits,
                &self.opts.sampling,
                self.submitted as u32,
                self.penalty,
                allowed,
            )?,
        };
        self.in_flight.push_back(rec.read_at_submit(&token));
        self.open = Some(rec);
        self.unsubmitted += 1;
        self.token = Some(token);
        self.submitted += 1;
        Ok(logits)
    }

    /// Submits the steps recorded and not yet submitted, if any, and gives their read-backs the
    /// submission.
    fn flush(&mut self) {
        if let Some(rec) = self.open.take() {
            let index = rec.submit();
            self.in_flight
                .iter_mut()
                .rev()
                .take(self.unsubmitted)
                .for_each(|r| r.submitted(index.clone()));
        }
        self.unsubmitted = 0;
    }

    /// Submits the prompt's step (`fed`: the positions the cache lacks) with its read-back; returns
    /// its logits (the first step's, for `top_logits`).
    fn prefill(&mut self, fed: &[u32]) -> Result<Tensor> {
        let ids: Vec<i32> = fed.iter().map(|&i| i as i32).collect();
        let input = Tensor::from_bytes(
            self.gpu,
            bytemuck::cast_slice(&ids),
            &[ids.len()],
            DType::I32,
        )?;
        let mask = self.mask()?;
        let logits = self.step(&input, mask.as_ref())?;
        self.flush();
        Ok(logits)
    }

    /// Whether another step fits (max_tokens, the cache's capacity).
    fn can_submit(&self) -> bool {
        self.submitted < self.opts.max_tokens && self.cache.len() < self.capacity
    }

    /// Records and submits the next decoding step (choosing among `allowed` when given): its input is
    /// the last step's choice, read on the GPU.
    fn submit(&mut self, allowed: Option<&Tensor>) -> Result<()> {
        let token = self
            .token
            .clone()
            .ok_or_else(|| Error::Input("a decoding step before the prompt's".into()))?;
        self.step(&token, allowed)?;
        if self.unsubmitted >= self.per_submit {
            self.flush();
        }
        Ok(())
    }

    /// The next token id, in order; `None` when no step is left (max_tokens or a full cache).
    async fn next_id(&mut self) -> Result<Option<u32>> {
        if self.mapped == 0 {
            // Start reading back every step in flight (one round trip for all of them), then
            // record and submit the next batch while those ids travel.
            let t = now_ms();
            self.in_flight.iter_mut().for_each(Readback::start); // Deno: waits for the GPU here
            self.mapped = self.in_flight.len();
            self.wait_ms += now_ms() - t;
            let t = now_ms();
            let ahead = if self.constraint.is_some() {
                0
            } else {
                self.batch
            };
            while self.in_flight.len() < self.mapped + ahead && self.can_submit() {
                self.submit(None)?;
            }
            self.flush();
            self.record_ms += now_ms() - t;
            self.batch = (self.batch * 2).min(self.depth);
        }
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        self.mapped = self.mapped.saturating_sub(1);
        let t = now_ms();
        let id = i32::from_le_bytes(
            pending.bytes().await?[..4]
                .try_into()
                .map_err(|_| Error::Readback("short token id".into()))?,
        );
        self.wait_ms += now_ms() - t;
        Ok(Some(id as u32))
    }

    /// After `id` was kept: a constrained generation moves its grammar past it and submits the next
    /// step, choosing among what the grammar allows then.
    fn chosen(&mut self, id: u32) -> Result<()> {
        if self.constraint.is_none() || !self.can_submit() {
            return Ok(());
        }
        let t = now_ms();
        if let Some(c) = self.constraint.as_mut() {
            c.consume(id)?;
        }
        self.grammar_ms += now_ms() - t;
        let mask = self.mask()?;
        self.submit(mask.as_ref())?;
        self.flush();
        self.record_ms += now_ms() - t;
        Ok(())
    }
}

/// The stats of a generation that began at `start` and read its first id at `first_ms`.
pub(super) fn stats_of(
    prompt_ids: &[u32],
    reused: usize,
    new_tokens: usize,
    start: f64,
    first_ms: Option<f64>,
    bytes_read_back: f64,
) -> GenerationStats {
    let end = now_ms();
    let first = first_ms.unwrap_or(end);
    GenerationStats {
        prompt_tokens: prompt_ids.len(),
        reused_tokens: reused,
        new_tokens,
        prefill_ms: first - start,
        decode_ms: end - first,
        prefill_tok_s: (prompt_ids.len() - reused) as f64 / ((first - start) / 1e3),
        decode_tok_s: if new_tokens > 1 {
            (new_tokens - 1) as f64 / ((end - first) / 1e3)
        } else {
            0.0
        },
        bytes_read_back_per_token: bytes_read_back / new_tokens.max(1) as f64,
        ..GenerationStats::default()
    }
}

/// How many leading ids `a` and `b` share.
pub(super) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn after_bytes(gpu: &Gpu) -> u64 {
    gpu.stats().gpu_to_host_bytes
}

/// The `n` highest logits, best first.
pub(super) fn top_logits(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    order
        .into_iter()
        .take(n)
        .map(|i| (i, logits[i as usize]))
        .collect()
}

/// New tokens turned into text as they come: incremental detokenization (only whole characters are
/// emitted) and stop strings (text that may begin one is held back until it cannot).
pub(super) struct Output<'a> {
    generator: &'a Generator,
    opts: &'a GenerateOptions,
    pub(super) ids: Vec<u32>,
    /// `ids[prefix..read]` was decoded last time; text past it is new.
    prefix: usize,
    read: usize,
    /// Everything decoded so far, and how much of it was handed to the callback.
    pub(super) text: String,
    emitted: usize,
}

impl<'a> Output<'a> {
    pub(super) fn new(generator: &'a Generator, opts: &'a GenerateOptions) -> Self {
        Output {
            generator,
            opts,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            text: String::new(),
            emitted: 0,
        }
    }

    /// Takes one new token; returns why to stop, if it is time.
    pub(super) fn push(
        &mut self,
        id: u32,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<StopReason>> {
        self.ids.push(id);
        if self.opts.stop_at_eos && self.generator.eos_ids.contains(&id) {
            self.flush(self.text.len(), on_piece);
            return Ok(Some(StopReason::Eos));
        }
        let g = self.generator;
        let before = g.decode(&self.ids[self.prefix..self.read])?;
        let now = g.decode(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            self.text.push_str(&now[before.len()..]);
            self.prefix = self.read;
            self.read = self.ids.len();
        }
        if let Some(at) = self
            .opts
            .stop
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            self.text.truncate(at);
            self.flush(at, on_piece);
            return Ok(Some(StopReason::StopString));
        }
        // Hold back a tail that could still become a stop string.
        let hold = self
            .opts
            .stop
            .iter()
            .map(|s| longest_prefix_suffix(&self.text, s))
            .max()
            .unwrap_or(0);
        if !self.flush(self.text.len() - hold, on_piece) {
            return Ok(Some(StopReason::Cancelled));
        }
        Ok(None)
    }

    /// Hands `text[emitted..upto]` to the callback; its answer (false: stop).
    fn flush(&mut self, upto: usize, on_piece: &mut dyn FnMut(&str) -> bool) -> bool {
        if upto <= self.emitted {
            return true;
        }
        let piece = &self.text[self.emitted..upto];
        self.emitted = upto;
        on_piece(piece)
    }
}

/// Bytes of the longest suffix of `text` that is a proper prefix of `stop`, at a char boundary.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_prefixes_are_held_back() {
        assert_eq!(longest_prefix_suffix("hello <|im", "<|im_end|>"), 4);
        assert_eq!(longest_prefix_suffix("hello", "<|im_end|>"), 0);
        assert_eq!(longest_prefix_suffix("ab", "b"), 0); // a whole match is found, not held
    }

    #[test]
    fn top_logits_are_sorted() {
        assert_eq!(
            top_logits(&[0.5, 2.0, -1.0, 1.0], 2),
            vec![(1, 2.0), (3, 1.0)]
        );
    }
}
