"""`survey`: a few questions answered by one digit each, stored durably as they are given.

Rules:
- Each question is offered with barge-in; the first digit is the answer. A digit outside the question's answers
  and silence both count against the question's `retries` (the invalid prompts, if any, precede the question
  again). A question still unanswered after its retries is skipped: the survey goes on with the next one.
- Each answer is stored at once (`storage.add_survey_answer`), so a caller who hangs up after the first question
  has that answer kept. The caller's hangup ends the call as usual (the engine counts it); the survey is still
  counted (ivr_surveys{result}) before the hangup goes on.
- Queue and agent: the node's templates, else what the transfer just before left: the queue of the call's end
  target and the agent Asterisk named (MEMBERINTERFACE after Queue() with setinterfacevar=yes, DIALEDPEERNAME
  after Dial()); in a call the agent blind-transferred to this flow, the agent's device from BLINDTRANSFER.
  Both are stored; in metrics the queue is a label only if a flow names it (else "other", or "none" when there
  is no queue), and the agent never is.
- A database that refuses an answer loses that answer only: it is counted
  (ivr_storage_failures_total{action="survey_answer"}) and logged, and the survey goes on.
"""

from __future__ import annotations

import logging
import re

from ivr.flow.channel import CallerHangup
from ivr.flow.compiled import SurveyNode, SurveyQuestion, literal_queues
from ivr.flow.context import ALL_DIGITS, CallContext, EngineError, Finish, Goto, clean_value
from ivr.flow.nodes import register
from ivr.metric_batch import BATCH

log = logging.getLogger(__name__)

SURVEY_RESULTS = ("completed", "partial", "unanswered")  # the `result` label of ivr_surveys
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]+(;[12])?$")  # PJSIP/1001-0000003f -> PJSIP/1001


async def _ask(question: SurveyQuestion, ctx: CallContext) -> str | None:
    """The caller's answer to one question, or None after the retries."""
    failures = 0
    before: list[str] = []
    while True:
        digit = await ctx.offer(before + list(question.prompts), ALL_DIGITS)
        if digit is None:
            digit = await ctx.next_digit(question.timeout)
        if digit is not None and digit in question.answers:
            return digit
        failures += 1
        problem = "no answer" if digit is None else f"{digit!r} is not an answer"
        ctx.emit(
            "no_input" if digit is None else "invalid",
            f"{question.id}: {problem} ({failures} of {question.retries + 1})",
            count=failures,
        )
        if failures > question.retries:
            return None
        before = list(question.invalid_prompts)


async def _who(node: SurveyNode, ctx: CallContext) -> tuple[str, str]:
    """(queue, agent) stored with the answers."""
    if node.queue is not None:
        queue = ctx.render(node.queue)
    else:
        queue = ctx.end_target.removeprefix("queue:") if ctx.end_target.startswith("queue:") else ""
    if node.agent is not None:
        agent = ctx.render(node.agent)
    elif ctx.outcome == "transferred":
        agent = await ctx.channel.get_variable("MEMBERINTERFACE" if queue else "DIALEDPEERNAME") or ""
    else:
        # Blind-transferred here by the agent (POST /calls/{id}/transfer with `flow`): Asterisk names the agent's
        # channel in BLINDTRANSFER (ami-16); the device without the channel's sequence number is the agent.
        agent = _CHANNEL_SUFFIX.sub("", await ctx.channel.get_variable("BLINDTRANSFER") or "")
    return clean_value(queue, 80), clean_value(agent, 80)


def queue_label(queue: str, ctx: CallContext) -> str:
    """Bounded: a queue some flow names, "none" without a queue, else "other"."""
    if not queue:
        return "none"
    return queue if queue in literal_queues(ctx.flows.values()) else "other"


@register("survey")
async def run(node: SurveyNode, ctx: CallContext) -> Goto | Finish:
    if ctx.storage is None:
        raise EngineError(f"survey {ctx.ref}: no storage configured in the service")
    from ivr.storage import StorageError, SurveyAnswer

    queue, agent = await _who(node, ctx)
    label = queue_label(queue, ctx)
    answered = 0
    try:
        if node.intro:
            await ctx.play(node.intro)
        for question in node.questions:
            answer = await _ask(question, ctx)
            if answer is None:
                continue
            answered += 1
            BATCH.record("SURVEY_ANSWERS", (ctx.flow.name, label, question.id, answer))
            ctx.emit("survey", f"{question.id} = {answer}", question=question.id, answer=answer)
            try:
                await ctx.storage.add_survey_answer(
                    SurveyAnswer(
                        call_id=ctx.info.uniqueid,
                        flow=ctx.flow.name,
                        survey=ctx.node_id,
                        question=question.id,
                        answer=answer,
                        queue=queue,
                        agent=agent,
                        answered_at=ctx.now(),
                    )
                )
            except StorageError as exc:
                BATCH.record("STORAGE_FAILURES", ("survey_answer",))
                log.warning(
                    "call %r: survey %s: answer to %s not stored: %s", ctx.info.uniqueid, ctx.ref, question.id, exc
                )
        if node.thanks:
            await ctx.play(node.thanks)
    except CallerHangup:
        _count(ctx, label, answered, len(node.questions))
        raise
    _count(ctx, label, answered, len(node.questions))
    detail = f"{answered} of {len(node.questions)} answered"
    if node.next:
        return Goto(node.next, "next", detail)
    return Finish(None, "next", detail, ctx.end_target)


def _count(ctx: CallContext, label: str, answered: int, asked: int) -> None:
    result = "completed" if answered == asked else "partial" if answered else "unanswered"
    BATCH.record("SURVEYS", (ctx.flow.name, label, result))
