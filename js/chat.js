// ChatEngine: the OpenAI-style chat API that WebLLM users know, over a Generator (main thread) or a
// GeneratorWorker (Web Worker):
//   const engine = await ChatEngine.load(source, { onProgress });      // or ChatEngine.inWorker
//   const reply = await engine.chat.completions.create({ messages, max_tokens: 128 });
//   for await (const chunk of await engine.chat.completions.create({ messages, stream: true }))
//     out.textContent += chunk.choices[0]?.delta.content ?? "";
// Each call sends the whole conversation, as with OpenAI; the generator keeps the KV cache of the
// last one, so a call that repeats it and adds a turn prefills only the new turn.
import { Generator } from "../pkg/webgpu_infer.js";
import { GeneratorWorker } from "./worker-client.js";

const FINISH = { eos: "stop", stop: "stop", max_tokens: "length", context_full: "length", cancelled: "abort" };

let counter = 0;
const completionId = () => `chatcmpl-${Date.now().toString(36)}${(counter++).toString(36)}`;

function usageOf(stats) {
  return {
    prompt_tokens: stats.promptTokens,
    completion_tokens: stats.newTokens,
    total_tokens: stats.promptTokens + stats.newTokens,
    extra: {
      prefill_tokens_per_s: stats.prefillTokS,
      decode_tokens_per_s: stats.decodeTokS,
      time_to_first_token_s: stats.prefillMs / 1e3,
      reused_prompt_tokens: stats.reusedTokens,
    },
  };
}

// The request's options in the generator's terms; what this engine cannot honour is refused by name
// rather than ignored.
function optionsOf(request, contextLength) {
  const fail = (m) => { throw new Error(`chat.completions.create: ${m}`); };
  if (!Array.isArray(request?.messages) || request.messages.length === 0) {
    fail("`messages` must be a non-empty array of { role, content }");
  }
  if (request.n !== undefined && request.n !== 1) fail("`n` other than 1 is not supported");
  if (request.tools?.length) fail("`tools` (function calling) is not supported yet");
  for (const k of ["frequency_penalty", "presence_penalty"]) {
    if (request[k]) fail(`\`${k}\` is not supported; \`repetition_penalty\` is`);
  }
  if (request.logprobs) fail("`logprobs` is not supported");
  const options = {
    // OpenAI's defaults: sampling at temperature 1, no top-p cut, as long as the context allows.
    maxTokens: request.max_completion_tokens ?? request.max_tokens ?? contextLength,
    temperature: request.temperature ?? 1,
    stopAtEos: !request.ignore_eos,
  };
  if (request.top_p !== undefined) options.topP = request.top_p;
  if (request.seed !== undefined && request.seed !== null) options.seed = request.seed;
  if (request.repetition_penalty !== undefined) options.repetitionPenalty = request.repetition_penalty;
  if (request.stop !== undefined && request.stop !== null) {
    options.stop = Array.isArray(request.stop) ? request.stop : [request.stop];
  }
  if (request.response_format !== undefined && request.response_format !== null) {
    // JSON mode: checked and compiled by the generator (a bad schema is refused by name).
    options.responseFormat = request.response_format;
  }
  if (request.signal) options.signal = request.signal;
  return options;
}

export class ChatEngine {
  /** Loads a model (`Generator.load`'s sources and options, `contextLength` included) on the page. */
  static async load(source, options) {
    // index.js has wrapped Generator.load (ready(), Cache Storage) by the time this runs.
    return new ChatEngine(await Generator.load(source, options), modelName(source));
  }

  /** Loads a model in a Web Worker (`Generator.inWorker`); the same API, the GPU work off the page. */
  static async inWorker(source, options) {
    return new ChatEngine(await GeneratorWorker.load(source, options), modelName(source));
  }

  /** Wraps a `Generator` or `GeneratorWorker` already loaded. */
  constructor(generator, model = "webgpu-infer") {
    this.generator = generator;
    this.model = model;
    this.chat = { completions: { create: (request) => this.#create(request) } };
  }

  /** Whether the model's files came from Cache Storage. */
  get fromCache() {
    return this.generator.fromCache;
  }

  /** Forgets the conversation's cache: the next request prefills its whole prompt. */
  async resetChat() {
    await this.generator.resetChat();
  }

  /** Frees the model (and its worker, for `inWorker`). */
  async dispose() {
    await this.generator.dispose();
  }

  async #create(request) {
    const options = optionsOf(request, this.generator.contextLength);
    const messages = request.messages;
    const base = { id: completionId(), created: Math.floor(Date.now() / 1e3), model: this.model };
    if (!request.stream) {
      const r = await this.generator.chatText(messages, options);
      return {
        ...base,
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: r.text },
          finish_reason: FINISH[r.stopReason] ?? "stop", logprobs: null }],
        usage: usageOf(r.stats),
      };
    }
    const pieces = this.generator.chat(messages, options);
    const chunk = (delta, finish_reason = null, usage) => ({
      ...base, object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason, logprobs: null }],
      ...(usage ? { usage } : {}),
    });
    // OpenAI's stream: the role first, then the text, then the finish reason (here with the usage).
    async function* chunks() {
      yield chunk({ role: "assistant", content: "" });
      for await (const content of pieces) yield chunk({ content });
      const stats = pieces.stats;
      yield chunk({}, FINISH[stats?.stopReason] ?? "stop", stats ? usageOf(stats) : undefined);
    }
    const iterator = chunks();
    // `break` out of the loop stops the generation too.
    const stop = iterator.return.bind(iterator);
    iterator.return = async (v) => { await pieces.return?.(); return stop(v); };
    return iterator;
  }
}

function modelName(source) {
  if (typeof source === "string") return source.split(/[?#]/)[0].split("/").filter(Boolean).pop() ?? source;
  return source?.name ?? "webgpu-infer";
}
