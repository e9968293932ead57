/**
 * `js-llm`: one chat completion from an OpenAI-compatible server per task (the JavaScript twin of
 * `llm-chat` and `py-llm`; the agent type is the file name, so one component serves several).
 *
 * Manifest (`NAME.toml` beside `NAME.wasm`):
 *
 * ```toml
 * allowed_outbound_hosts = ["https://api.openai.com"]
 * secrets = ["openai"]
 * [config]
 * base_url = "https://api.openai.com/v1"
 * model = "gpt-4o-mini"
 * secret = "openai"                 # the secret holding the API key (none: no authorization)
 * system_prompt = "You are a careful researcher."
 * ```
 * Input `{"prompt": "..."}` (optional). The user message is the prompt followed by the outputs of
 * the completed dependencies (their `content` when it is a string, else the whole output as JSON),
 * each under a `## Result of TASK (AGENT_TYPE)` heading. Output: `{content, model, usage}`.
 */
import { config, invalidInput, llm, progress } from '@hyphae/plugin';

/** The prompt, then each completed dependency's output; `undefined` when there is neither. */
export function userMessage(prompt, previousResults) {
  const parts = typeof prompt === 'string' && prompt.trim() ? [prompt.trim()] : [];
  for (const r of previousResults) {
    if (r.status !== 'completed') continue;
    const content = r.output && typeof r.output === 'object' ? r.output.content : undefined;
    const text = typeof content === 'string' ? content : JSON.stringify(r.output);
    parts.push(`## Result of ${r.taskId} (${r.agent.agentType})\n\n${text.trim()}`);
  }
  return parts.length ? parts.join('\n\n') : undefined;
}

/** @param {import('@hyphae/plugin').TaskContext} ctx */
export async function execute(ctx) {
  const prompt = ctx.input && typeof ctx.input === 'object' ? ctx.input.prompt : undefined;
  const user = userMessage(prompt, ctx.previousResults);
  if (user === undefined) throw invalidInput('nothing to ask: no `prompt` in the input and no previous results');
  const client = llm.Client.fromConfig();
  const messages = [];
  const systemPrompt = config.get('system_prompt');
  if (systemPrompt && systemPrompt.trim()) messages.push(llm.system(systemPrompt));
  messages.push(llm.user(user));
  progress(10, `asking ${client.model}`);
  const answer = await client.chat(messages);
  progress(100, 'answered');
  return { content: answer.content, model: answer.model, usage: answer.usage };
}
