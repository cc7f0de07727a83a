// Edits, deletes, reactions, thread counts and pins of the open channel, live
// and caught up. The page keeps the newest changeId it has seen (`last`) and
// rejoins with changesAfter = last after a reconnect; joined_channel then
// carries the changes it missed, oldest first, applied here exactly like the
// live events. Every change carries the message's state now (not a delta),
// so applying one twice, or one the page already saw live, does no harm.

export class ChangeFeed {
  constructor({ list, thread, actions, normalise, onPins }) {
    this.list = list;
    this.thread = thread;
    this.actions = actions;
    this.normalise = normalise;
    this.onPins = onPins;
    this.last = null; // newest changeId seen; null before the first join
    // Between pages of a catch-up, live events do not move `last`: a
    // reconnect then must still ask for the pages not yet read.
    this.paging = false;
  }

  seen(changeId) {
    if (Number.isInteger(changeId) && (this.last === null || changeId > this.last)) this.last = changeId;
  }

  live(event) {
    this.apply(event);
    if (!this.paging) this.seen(event.changeId);
  }

  // joined_channel: applies its `changes`; "more" when the page must join
  // again (changesAfter = the last one) for the next page of them.
  caughtUp(event) {
    const missed = Array.isArray(event.changes) ? event.changes : [];
    for (const change of missed) {
      this.apply(change);
      this.seen(change.changeId);
    }
    this.paging = Boolean(event.changesHasMore && missed.length);
    if (this.paging) return "more";
    this.seen(event.changeId);
    return "done";
  }

  // Merges fields into the message wherever it is drawn. A change to a
  // message the page does not show (older than its history) is left alone:
  // history loaded later has it as it is now.
  patch(key, fields) {
    this.list.patch(key, fields);
    if (this.thread.isOpen) this.thread.patch(key, fields);
  }

  apply(event) {
    const key = String(event.type === "message_updated" ? event.message.id : event.messageId);
    switch (event.type) {
      case "message_updated":
        if (typeof event.requestId === "string" && event.requestId.startsWith("edit:")) this.actions.saved(key);
        this.patch(key, withoutHiddenGrade(this.normalise(event.message)));
        return;
      case "message_deleted":
        this.actions.forget(key);
        this.list.remove(key);
        if (this.thread.isOpen) this.thread.remove(key);
        return;
      case "reaction_updated":
        this.patch(key, { reactions: event.reactions });
        return;
      case "thread_updated":
        this.patch(key, { replyCount: event.replyCount, lastReplyAt: event.lastReplyAt });
        return;
      case "message_pinned":
      case "message_unpinned":
        this.patch(key, { isPinned: event.type === "message_pinned" });
        this.onPins();
        return;
      default:
    }
  }
}

// Grades are private: an update the whole channel hears carries `grade:
// null`, which must not wipe the grade the author or a teacher holds (a
// grade is never taken back).
function withoutHiddenGrade(fields) {
  if (fields.grade !== null && fields.grade !== undefined) return fields;
  const { grade, ...rest } = fields;
  return rest;
}
