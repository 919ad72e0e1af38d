import TrellisPlacement
import TrellisTransport
import TrellisWire

/// A shard of one capability.
struct ShardKey: Hashable, Sendable {
    let capability: String
    let shard: Int
}

/// A call or cast held back until its shard's processes have arrived from their old owner.
/// A call carries its caller's deadline, which a forward to another node keeps.
enum HeldMessage: Sendable {
    case call(id: String, payload: Value, from: PeerID, deadline: ContinuousClock.Instant, reply: @Sendable (CallResult) -> Void)
    case cast(id: String, payload: Value)

    /// The process the message is for.
    var id: String {
        switch self {
        case .call(let id, _, _, _, _), .cast(let id, _): return id
        }
    }
}

/// What this node knows about shards changing hands.
///
/// When a shard moves from this node to another, calls for it are held here (*departing*)
/// until the shard's processes have reached the new owner; then they are forwarded, behind
/// the handoff. When a shard moves here from a node that is still up, calls for it are held
/// (*awaited*) until that node's handoff names the shard, or `handoffTimeout` passes; another
/// node's handoff naming it does not release it (that node may never have had its
/// processes), unless the awaited node, leaving, disclaims it (see `disclaimed`). A newcomer
/// awaits its shards from any holder, until it has heard from every holder or a handoff
/// names the shard; a shard a handoff marks *pending* (its processes are
/// still on their way) waits for a handoff that names it. Either way no process is activated
/// afresh while its state is on the way. A shard whose processes arrived before this node's
/// own table gave it the shard is *adopted*: it is served here whatever the table says,
/// until the table next changes.
struct HandoffBook: Sendable {
    /// Shards expected from another node, with the messages held for them.
    var awaited: [ShardKey: AwaitedShard] = [:]
    /// Shards being handed from this node to another, with the messages held for them.
    var departing: [ShardKey: [HeldMessage]] = [:]
    /// Shards whose processes arrived here, served here until the capability's table changes.
    var adopted: Set<ShardKey> = []
    /// For a newcomer (it knew no other holder of the capability before), the holders it
    /// still awaits a handoff message from, empty or not; when none is left and its own table
    /// names every holder it heard from or of, every awaited shard of the capability is released.
    var newcomerAwaits: [String: Set<PeerID>] = [:]
    /// The holders a handoff message of each capability came from since this node's table of
    /// the capability last changed (empty while the first one's processes are landing).
    var heardFrom: [String: Set<PeerID>] = [:]
    /// The other holders those messages named: a newcomer waits for them too.
    var mentioned: [String: Set<PeerID>] = [:]
    /// Messages held until this node's table of the capability changes (see `TableWait`).
    var awaitingNewTable: [String: [TableWait]] = [:]
    /// The holder digests of this node's recent tables of each capability, oldest first.
    var pastViews: [String: [UInt64]] = [:]
    /// Shards a handoff marked pending before this node awaited them (its table had not
    /// placed them here yet), with the node named and when: a wait that starts soon after
    /// starts pending (see `expect`).
    var pendingHints: [ShardKey: (node: PeerID, since: ContinuousClock.Instant)] = [:]

    /// Remembers that this node routed `capability` by `table` (the last 16 tables are kept).
    mutating func remember(_ table: ShardTable, of capability: String) {
        var past = pastViews[capability] ?? []
        past.append(table.holderDigest)
        if past.count > 16 { past.removeFirst(past.count - 16) }
        pastViews[capability] = past
    }

    /// Whether a sender whose table had `sender`'s holders knows more than this node, whose
    /// table is `current`: it lists more holders, in a set this node has never routed by.
    /// A sender merely behind (one of this node's past tables) is not waited for.
    func isBehind(_ sender: HolderView, capability: String, current: ShardTable?) -> Bool {
        guard sender.count > (current?.holderCount ?? 0), sender.digest != current?.holderDigest else { return false }
        return !(pastViews[capability] ?? []).contains(sender.digest)
    }
    /// Messages past the hold check and not yet handed to their process host (or forwarded).
    /// A handoff waits for this to drop to zero, so that no call slips in between a shard
    /// starting to depart and its processes being taken out.
    var deliveries = 0

    /// Whether nothing is in flight: the fast path of every call checks this first.
    var isIdle: Bool { awaited.isEmpty && departing.isEmpty && adopted.isEmpty }

    /// Holds `message` if its shard is awaited or departing; returns whether it was held.
    mutating func hold(_ message: HeldMessage, for key: ShardKey) -> Bool {
        if departing[key] != nil {
            departing[key]!.append(message)
            return true
        }
        guard awaited[key] != nil else { return false }
        awaited[key]!.held.append(message)
        return true
    }

    /// Holds `entry` until this node's table of `capability` changes; returns whether it is
    /// the first message held so (whose holder schedules their release).
    mutating func holdForNewTable(_ entry: TableWait, of capability: String) -> Bool {
        let first = awaitingNewTable[capability] == nil
        awaitingNewTable[capability, default: []].append(entry)
        return first
    }

    /// Marks `keys` as handed over; returns the messages held for them.
    mutating func departed(_ keys: [ShardKey]) -> [HeldMessage] {
        keys.flatMap { departing.removeValue(forKey: $0) ?? [] }
    }

    /// Updates a newcomer's wait for `capability` now that its other holders are `others`:
    /// it also waits for those of them not heard from yet (a holder that leaves before sending
    /// is waited for until `handoffTimeout`). Returns the messages to deliver when nobody is
    /// left to wait for.
    mutating func holdersChanged(_ capability: String, others: Set<PeerID>, newcomer: Bool) -> [HeldMessage] {
        guard newcomer || newcomerAwaits[capability] != nil else {
            heardFrom[capability] = nil
            mentioned[capability] = nil
            return []
        }
        let waiting = (newcomerAwaits[capability] ?? []).union(others).union(mentioned[capability] ?? [])
        newcomerAwaits[capability] = waiting.subtracting(heardFrom[capability] ?? [])
        return releaseIfHeardFromAll(capability, tableHolders: others)
    }

    /// Releases every shard of `capability` a newcomer awaits from any holder once it has heard
    /// from every holder and its table (whose holders other than this node are `tableHolders`)
    /// names them all. A shard awaited from one node, or pending (see `expect`), stays awaited.
    ///
    /// Heard from all but not yet routing by a table with all of them (a holder's handoff came
    /// before this node saw that holder up), the newcomer keeps waiting: served now, a call
    /// would activate a process on this node that the complete table places on that holder,
    /// where it may already live; two processes with one id, and one's state lost when this
    /// node hands its copy over. The next table change looks again.
    private mutating func releaseIfHeardFromAll(_ capability: String, tableHolders: Set<PeerID>) -> [HeldMessage] {
        guard newcomerAwaits[capability]?.isEmpty == true else { return [] }
        let known = (heardFrom[capability] ?? []).union(mentioned[capability] ?? [])
        guard known.isSubset(of: tableHolders) else { return [] }
        newcomerAwaits[capability] = nil
        heardFrom[capability] = nil
        mentioned[capability] = nil
        var released: [HeldMessage] = []
        for key in awaited.keys where key.capability == capability {
            released += endWait(for: key) { $0.from == nil && !$0.pending }
        }
        return released
    }

    /// Records that the processes of each of `pending`'s shards are still on their way from
    /// the node it names (the sender of a handoff still awaiting them itself, or a holder
    /// that is leaving): a shard awaited from any holder, or from that node, is not released
    /// by hearing from every holder, only by a handoff naming it, and is awaited from `now`
    /// on. Returns the shards whose wait changed so, for a new give-up timer.
    ///
    /// A shard not awaited yet is remembered in `pendingHints`; hints older than
    /// `forgettingBefore` are forgotten.
    mutating func expect(
        _ pending: [ShardKey: PeerID], since now: ContinuousClock.Instant, forgettingBefore oldest: ContinuousClock.Instant
    ) -> [ShardKey] {
        pendingHints = pendingHints.filter { $0.value.since >= oldest }
        var changed: [ShardKey] = []
        for (key, node) in pending {
            guard var shard = awaited[key] else {
                pendingHints[key] = (node, now)
                continue
            }
            guard !shard.pending, shard.from == nil || shard.from == node else { continue }
            shard.pending = true
            shard.since = now
            awaited[key] = shard
            changed.append(key)
        }
        return changed
    }

    /// Starts awaiting `key` from `previousOwner` (`nil`: from any holder) at `now`, pending
    /// if a handoff marked it so since `recent` (see `expect`); returns whether a wait started.
    ///
    /// A shard already awaited from that node (or from any holder) keeps its wait. One awaited
    /// from another node is awaited from `previousOwner` from now on, with the messages held
    /// for it: while this node's tables placed the shard on `previousOwner`, whatever reached
    /// this node for it went on there, so that is where its processes are now. (Kept, the old
    /// wait could end at its give-up time with no handoff from `previousOwner`, and a call
    /// would start afresh here a process that `previousOwner` was about to hand over.)
    @discardableResult
    mutating func startAwaiting(
        _ key: ShardKey, from previousOwner: PeerID?, since now: ContinuousClock.Instant, hintsSince recent: ContinuousClock.Instant
    ) -> Bool {
        if let wait = awaited[key], wait.from == nil || wait.from == previousOwner || previousOwner == nil { return false }
        var shard = AwaitedShard(from: previousOwner, since: now, held: awaited[key]?.held ?? [])
        if let hint = pendingHints.removeValue(forKey: key), hint.since >= recent,
           previousOwner == nil || previousOwner == hint.node {
            shard.pending = true
        }
        awaited[key] = shard
        return true
    }

    /// Records processes of `keys` that `origin` handed to another node, which passed them on
    /// here; returns the messages held for those awaited from `origin` (or from any holder).
    mutating func passedOn(_ keys: [ShardKey], from origin: PeerID) -> [HeldMessage] {
        for key in keys { pendingHints[key] = nil }
        return keys.flatMap { key in endWait(for: key) { $0.from == nil || $0.from == origin } }
    }

    /// Records that processes of `capability` are being handed here, before they land: a node
    /// alone until now that sees them in its host is still a newcomer (see `heardFrom`).
    mutating func beingHanded(_ capability: String) {
        if heardFrom[capability] == nil { heardFrom[capability] = [] }
    }

    /// Records `sender`'s handoff of `keys` of `capability`: adopts them when `adopt`, and
    /// returns the messages held for those awaited from `sender` (or from any holder), and,
    /// when the message is the sender's handoff for a table (`heard`, not a second message),
    /// for every shard of the capability when the sender was the last holder a newcomer awaited.
    mutating func arrived(
        _ keys: [ShardKey], of capability: String, from sender: PeerID, holders: [PeerID], selfID: PeerID, adopt: Bool,
        heard: Bool = true, tableHolders: Set<PeerID>
    ) -> [HeldMessage] {
        var released: [HeldMessage] = []
        for key in keys {
            pendingHints[key] = nil
            if adopt { adopted.insert(key) }
            if let from = awaited[key]?.from, from != sender { awaited[key]!.namedByAnother = true }
            released += endWait(for: key) { $0.from == nil || $0.from == sender }
        }
        guard heard else { return released }
        heardFrom[capability, default: []].insert(sender)
        // The sender knows holders this newcomer may not have met yet: wait for them too.
        mentioned[capability, default: []].formUnion(holders.filter { $0 != selfID })
        if newcomerAwaits[capability] != nil {
            let heard = heardFrom[capability] ?? []
            newcomerAwaits[capability]!.formUnion(holders.filter { $0 != selfID && !heard.contains($0) })
            newcomerAwaits[capability]!.remove(sender)
        }
        return released + releaseIfHeardFromAll(capability, tableHolders: tableHolders)
    }

    /// Records that `sender` let go of `keys` without vouching for their processes (it awaited
    /// them from any holder itself, as a newcomer does): returns the messages held for those
    /// awaited from `sender` only. A wait from any holder stays: their processes may be on
    /// their way from a holder that really had them.
    mutating func relinquished(_ keys: [ShardKey], by sender: PeerID) -> [HeldMessage] {
        keys.flatMap { key in endWait(for: key) { $0.from == sender } }
    }

    /// Records the last handoff of `sender`, which is leaving, decided by the same table as
    /// this node's: of the shards of `capability` awaited from it, those it neither `named`
    /// (handed over, relinquished or marked pending from itself) never had their processes
    /// there. Each is released if another holder's handoff named it already (its processes
    /// came with that), and awaited from any holder otherwise. Returns the messages released.
    ///
    /// (Before, such a wait lasted until `handoffTimeout`: a node whose table had briefly
    /// placed the shard on the leaver awaited it from there, while its processes came from
    /// another node; a call held so long was then served on a fresh process, which lost the
    /// state if the processes were still on their way.)
    mutating func disclaimed(by sender: PeerID, of capability: String, naming named: Set<Int>) -> [HeldMessage] {
        var released: [HeldMessage] = []
        for (key, wait) in awaited where key.capability == capability && wait.from == sender && !named.contains(key.shard) {
            if wait.namedByAnother {
                released += endWait(for: key)
            } else {
                awaited[key] = AwaitedShard(from: nil, since: wait.since, held: wait.held, pending: wait.pending)
            }
        }
        return released
    }

    /// Stops waiting for those of `keys` awaited since `since` or earlier (a key awaited again
    /// later has a wait of its own); returns the messages held for them, with their capability.
    /// A newcomer stops waiting for the holders it has not heard from, unless a wait that
    /// began later still runs: that wait's own give-up ends it.
    mutating func giveUp(_ keys: [ShardKey], since: ContinuousClock.Instant) -> [(capability: String, message: HeldMessage)] {
        for capability in Set(keys.map(\.capability))
        where !awaited.contains(where: { $0.key.capability == capability && $0.value.since > since }) {
            newcomerAwaits[capability] = nil
        }
        return keys.flatMap { key in endWait(for: key) { $0.since <= since }.map { (key.capability, $0) } }
    }

    /// Ends the wait for `key`, if there is one that `ends` accepts; returns the messages held for it.
    private mutating func endWait(for key: ShardKey, if ends: (AwaitedShard) -> Bool = { _ in true }) -> [HeldMessage] {
        guard let shard = awaited[key], ends(shard) else { return [] }
        awaited[key] = nil
        return shard.held
    }
}

/// A shard this node expects from another, and the messages held until it arrives.
struct AwaitedShard: Sendable {
    /// The node expected to hand it over: its previous owner, or `nil` when any holder may
    /// (a newcomer does not know which holder had it).
    let from: PeerID?
    /// When this node started waiting, or was told the processes are still on their way.
    var since: ContinuousClock.Instant
    var held: [HeldMessage] = []
    /// Whether a handoff said the processes are still on their way (see `HandoffBook.expect`).
    var pending = false
    /// Whether a handoff from a node other than `from` named the shard (see `HandoffBook.disclaimed`).
    var namedByAnother = false
}

/// Which nodes a table has as holders: how many, and a digest of the set.
struct HolderView: Sendable, Equatable {
    let count: Int
    let digest: UInt64
}

/// Where a call or cast that arrived from another node came from.
struct Origin: Sendable {
    /// The node that sent it here: its caller, or a node that forwarded it.
    let sender: PeerID
    /// The holders of the capability in the sender's table.
    let view: HolderView
}

/// A message held until this node's table of its capability changes, because the tables of
/// its sender and of this node disagree: the sender's knows holders this node's has never
/// had (this node is behind), or the sender's names this node the owner of a shard this
/// node's places on the sender (one of the two is behind, and each would send the message
/// back to the other until one serves it on a fresh process).
struct TableWait: Sendable {
    let message: HeldMessage
    let hops: Int64
    let origin: Origin
    /// Whether the sender's table named this node the owner and this node's the sender. Such
    /// a message is routed afresh by the next table (its hops count from zero again).
    let bounced: Bool
}
