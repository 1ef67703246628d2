//! A generation on the CPU backend: the same steps as on the GPU (the prompt, then one token at a
//! time, each chosen by `cpu::sample` as the GPU's sampler chooses), computed as called; nothing is
//! submitted ahead, so nothing is thrown away at the end. In a page the steps run on the calling
//! thread; the event loop runs between tokens (the text streams, the page stays responsive).

use crate::clock::{now_ms, yield_to_event_loop};
use crate::cpu::par::with_team;
use crate::cpu::sample::{Choose, choose};
use crate::cpu::{Cpu, HostTensor};
use crate::error::Result;
use crate::models::chat::ChatSession;
use crate::models::llama::Llama;

use super::steps::{Output, keep_for_next_turn, stats_of, top_logits};
use super::{GenerateOptions, Generation, Generator, StopReason};

impl Generator {
    /// [`Generator::generate_in`] on the CPU backend (checks already done).
    pub(super) async fn generate_host(
        &self,
        (cpu, model): (&Cpu, &Llama<Cpu>),
        session: Option<&mut ChatSession>,
        prompt_ids: Vec<u32>,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let start = now_ms();
        let vocab = model.config().vocab_size;
        let capacity = (prompt_ids.len() + opts.max_tokens).min(self.context);
        let mut fresh = None;
        let session = session.map(|s| {
            s.cache = None; // the fed ids describe one cache: this engine's
            (&mut s.host_cache, &mut s.fed)
        });
        let (cache, fed_before, reused) =
            self.open_cache(session, &mut fresh, &prompt_ids, capacity, |n| {
                model.new_host_cache(n)
            })?;
        // The repetition penalty's tokens: the prompt's, then each chosen one.
        let mut seen = (opts.repetition_penalty != 1.0).then(|| {
            let mut words = vec![0u32; vocab.div_ceil(32)];
            for &id in &prompt_ids {
                if let Some(w) = words.get_mut(id as usize / 32) {
                    *w |= 1 << (id % 32);
                }
            }
            words
        });
        let t = now_ms();
        let mut constraint = match &opts.response_format {
            Some(format) => Some(self.constraint(format)?),
            None => None,
        };
        let mut grammar_ms = now_ms() - t;
        let mut ops = cpu.clone();
        let fed: Vec<i32> = prompt_ids[reused..].iter().map(|&i| i as i32).collect();
        let mut record_ms = 0.0;
        let t = now_ms();
        let input = HostTensor::from_i32(fed.clone(), &[fed.len()])?;
        let mut logits = with_team(|| model.forward(&mut ops, &input, cache)?.to_vec())?;
        record_ms += now_ms() - t;
        let mut out = Output::new(self, opts);
        let (mut first_ms, mut first_step_top_logits) = (None, Vec::new());
        let mut token_ms = Vec::with_capacity(opts.max_tokens.min(capacity));
        let mut step = 0u32;
        let stop_reason = loop {
            // In a page this runs on the calling thread: let it breathe between tokens.
            yield_to_event_loop().await;
            let t = now_ms();
            let allowed = constraint.as_mut().map(|c| c.mask()).transpose()?;
            grammar_ms += now_ms() - t;
            let c = Choose {
                step,
                penalty: seen.as_deref_mut().map(|s| (s, opts.repetition_penalty)),
                allowed: allowed.as_deref(),
            };
            let id = choose(&logits, &opts.sampling, c);
            step += 1;
            if first_ms.is_none() {
                first_ms = Some(now_ms());
                if opts.top_logits > 0 {
                    first_step_top_logits = top_logits(&logits, opts.top_logits);
                }
            }
            token_ms.push(now_ms() - start);
            if let Some(reason) = out.push(id, on_piece)? {
                break reason;
            }
            if step as usize >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if cache.len() >= capacity {
                break StopReason::ContextFull;
            }
            let t = now_ms();
            if let Some(c) = constraint.as_mut() {
                c.consume(id)?;
            }
            grammar_ms += now_ms() - t;
            let t = now_ms();
            let input = HostTensor::from_i32(vec![id as i32], &[1])?;
            logits = with_team(|| model.forward(&mut ops, &input, cache)?.to_vec())?;
            record_ms += now_ms() - t;
        };
        keep_for_next_turn(cache, fed_before, &prompt_ids, &out.ids);
        let mut stats = stats_of(&prompt_ids, reused, out.ids.len(), start, first_ms, 0.0);
        (stats.record_ms, stats.grammar_ms) = (record_ms, grammar_ms);
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
}
