"""Call recording under the flow's recording policy (always / consent / never).

Rules for this file:
- One `Recorder` per call. It owns the state (idle, recording, paused, stopped) and the caller's consent answer,
  asked at most once per call.
- Pause is StopMixMonitor, resume is MixMonitor on the same file with append, so one call gives one file.
- The file name comes from the policy's template and passes through `safe_filename()`: caller IDs and uniqueids
  never become path separators.
- The recordings index in storage is kept when storage offers it; a storage failure never breaks the call.
- The state lives on the channel too (IVR_RECORDING_STATE/FILE/ID/CONSENT): MixMonitor outlives the AGI session
  across a park comeback, so a re-entered call (`?node=`) restores it instead of asking consent again or
  starting a second recording over the first.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ivr import dialplan
from ivr.flow.templates import safe_filename

if TYPE_CHECKING:  # pragma: no cover
    from ivr.flow.context import CallContext

log = logging.getLogger(__name__)

STATE_VARIABLE = dialplan.RECORDING_STATE
FILE_VARIABLE = dialplan.RECORDING_FILE
ID_VARIABLE = dialplan.RECORDING_ID
CONSENT_VARIABLE = dialplan.RECORDING_CONSENT


class Recorder:
    def __init__(self) -> None:
        self.state = "idle"
        self.consent: bool | None = None
        self.path = ""
        self.recording_id: int | None = None
        self._segment_start: datetime | None = None
        self.seconds = 0.0

    @property
    def active(self) -> bool:
        return self.state == "recording"

    async def restore(self, ctx: CallContext) -> None:
        """Pick up what an earlier AGI session of this channel left (park comeback)."""
        get = ctx.channel.get_variable
        consent = await get(CONSENT_VARIABLE)
        if consent in ("yes", "no"):
            self.consent = consent == "yes"
            ctx.variables["recording_consent"] = consent
        state, path = await get(STATE_VARIABLE), await get(FILE_VARIABLE)
        if state in ("recording", "paused") and path:
            self.state, self.path = state, path
            self._segment_start = ctx.now() if state == "recording" else None
            rec_id = await get(ID_VARIABLE) or ""
            self.recording_id = int(rec_id) if rec_id.isdigit() else None
            ctx.emit("record", f"recording {state} from an earlier part of this call: {path}", path=path)

    async def _save(self, ctx: CallContext) -> None:
        await ctx.channel.set_variable(STATE_VARIABLE, self.state)
        await ctx.channel.set_variable(FILE_VARIABLE, self.path)
        if self.recording_id is not None:
            await ctx.channel.set_variable(ID_VARIABLE, str(self.recording_id))

    async def _ask_consent(self, ctx: CallContext) -> bool:
        policy = ctx.flow.recording
        digit = await ctx.play(policy.consent_prompts, policy.opt_out_key)
        if digit is None:
            digit = await ctx.channel.wait_for_digit(ctx.settings.consent_wait)
            if digit:
                ctx.emit("digit", digit, digit=digit)
        self.consent = digit != policy.opt_out_key
        ctx.variables["recording_consent"] = "yes" if self.consent else "no"
        await ctx.channel.set_variable(CONSENT_VARIABLE, ctx.variables["recording_consent"])
        ctx.emit(
            "record", "caller consented" if self.consent else "caller opted out of recording", consent=self.consent
        )
        return self.consent

    async def start(self, ctx: CallContext, why: str) -> bool:
        """Start (or keep) recording if the policy allows. Returns whether the call is being recorded."""
        policy = ctx.flow.recording
        if self.state == "recording":
            return True
        if self.state == "paused":
            return await self.resume(ctx)
        if policy.policy == "never":
            ctx.emit("record", f"not recording ({why}): the flow's policy is never", skipped=True)
            return False
        if policy.policy == "consent":
            if self.consent is None:
                await self._ask_consent(ctx)
            if not self.consent:
                ctx.emit("record", f"not recording ({why}): no consent", skipped=True)
                return False
        name = safe_filename(ctx.render(policy.file))
        self.path = f"{ctx.settings.recordings_dir.rstrip('/')}/{name}.{policy.format}"
        await ctx.channel.start_recording(self.path, append=False)
        self.state = "recording"
        self._segment_start = ctx.now()
        ctx.emit("record", f"recording started ({why}) to {self.path}", path=self.path)
        await self._index_start(ctx)
        await self._save(ctx)
        return True

    async def pause(self, ctx: CallContext) -> None:
        if self.state != "recording":
            ctx.emit("record", f"pause ignored: recording is {self.state}", skipped=True)
            return
        await ctx.channel.stop_recording()
        self._close_segment(ctx)
        self.state = "paused"
        ctx.emit("record", "recording paused")
        await self._index_state(ctx, "paused")
        await self._save(ctx)

    async def resume(self, ctx: CallContext) -> bool:
        if self.state != "paused":
            ctx.emit("record", f"resume ignored: recording is {self.state}", skipped=True)
            return self.state == "recording"
        await ctx.channel.start_recording(self.path, append=True)
        self.state = "recording"
        self._segment_start = ctx.now()
        ctx.emit("record", "recording resumed")
        await self._index_state(ctx, "recording")
        await self._save(ctx)
        return True

    async def stop(self, ctx: CallContext) -> None:
        if self.state not in ("recording", "paused"):
            ctx.emit("record", f"stop ignored: recording is {self.state}", skipped=True)
            return
        if self.state == "recording":
            await ctx.channel.stop_recording()
        await self.finish(ctx)
        await self._save(ctx)
        ctx.emit("record", f"recording stopped ({self.seconds:.1f} s)")

    async def finish(self, ctx: CallContext) -> None:
        """Close the bookkeeping (at stop, or when the call ends: a hangup ends MixMonitor by itself)."""
        if self.state not in ("recording", "paused"):
            return
        self._close_segment(ctx)
        self.state = "stopped"
        if self.recording_id is not None and ctx.storage is not None:
            try:
                await ctx.storage.finish_recording(self.recording_id, ctx.now(), self.seconds)
            except Exception:  # the index must not break the call
                log.exception("could not finish recording %s in storage", self.recording_id)

    def _close_segment(self, ctx: CallContext) -> None:
        if self._segment_start is not None:
            self.seconds += max(0.0, (ctx.now() - self._segment_start).total_seconds())
            self._segment_start = None

    async def _index_start(self, ctx: CallContext) -> None:
        if ctx.storage is None or not hasattr(ctx.storage, "add_recording"):
            return
        try:
            from ivr.storage import Recording

            self.recording_id = await ctx.storage.add_recording(
                Recording(
                    call_id=ctx.info.uniqueid,
                    path=self.path,
                    caller=ctx.info.caller_id,
                    flow=ctx.flow.name,
                    channel=ctx.info.channel,
                    started_at=ctx.now(),
                )
            )
        except Exception:
            log.exception("could not index recording %s", self.path)

    async def _index_state(self, ctx: CallContext, state: str) -> None:
        if self.recording_id is None or ctx.storage is None:
            return
        try:
            await ctx.storage.set_recording_state(self.recording_id, state)
        except Exception:
            log.exception("could not update recording %s", self.recording_id)
