import TrellisPlacement
import TrellisWire
import XCTest

@testable import Trellis

/// The bookkeeping of shards changing hands, without a network.
final class HandoffBookTests: XCTestCase {
    let me = PeerID(name: "me", host: "127.0.0.1", port: 1)
    let a = PeerID(name: "a", host: "127.0.0.1", port: 2)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 3)

    func key(_ shard: Int) -> ShardKey { ShardKey(capability: "c", shard: shard) }
    func cast(_ id: String) -> HeldMessage { .cast(id: id, payload: .nil) }
    func awaiting(from previousOwner: PeerID? = nil, since: ContinuousClock.Instant = .now) -> AwaitedShard {
        AwaitedShard(from: previousOwner, since: since)
    }

    /// A newcomer whose only other holder is `a`, awaiting shards 1, 2, ... from any holder,
    /// with a message held for each.
    func newcomer(holding ids: [String]) -> HandoffBook {
        var book = HandoffBook()
        XCTAssertEqual(book.holdersChanged("c", others: [a], newcomer: true).count, 0)
        for (index, id) in ids.enumerated() {
            book.awaited[key(index + 1)] = awaiting()
            XCTAssertTrue(book.hold(cast(id), for: key(index + 1)))
        }
        return book
    }

    func testAwaitedShardsHoldTheirMessagesUntilTheirHandoffArrives() {
        var book = HandoffBook()
        XCTAssertTrue(book.isIdle)
        book.awaited[key(1)] = awaiting()
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        XCTAssertFalse(book.hold(cast("y"), for: key(2)), "other shards are not held")
        let released = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, tableHolders: [a])
        XCTAssertEqual(released.map(\.id), ["x"])
        XCTAssertTrue(book.adopted.contains(key(1)), "a shard that arrived is served here")
        XCTAssertFalse(book.hold(cast("z"), for: key(1)))
    }

    func testAHandoffFromASenderThatKnowsFewerHoldersReleasesButAdoptsNothing() {
        var book = HandoffBook()
        book.awaited[key(1)] = awaiting()
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        let released = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: false, tableHolders: [a])
        XCTAssertEqual(released.map(\.id), ["x"], "the sender has spoken for the shard")
        XCTAssertTrue(book.adopted.isEmpty, "this node's table decides where the shard is served")
    }

    func testDepartingShardsHoldUntilHandedOver() {
        var book = HandoffBook()
        book.departing[key(3)] = []
        XCTAssertTrue(book.hold(cast("x"), for: key(3)))
        XCTAssertEqual(book.departed([key(3)]).map(\.id), ["x"])
        XCTAssertTrue(book.isIdle)
    }

    func testANewcomerWaitsForEveryHolderIncludingThoseOthersName() {
        var book = HandoffBook()
        // a's handoff arrives before the newcomer's own table knows anyone, naming b too.
        _ = book.arrived([key(1)], of: "c", from: a, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [])
        book.awaited[key(2)] = awaiting()
        XCTAssertTrue(book.hold(cast("from-b"), for: key(2)))
        XCTAssertEqual(book.holdersChanged("c", others: [a], newcomer: true).count, 0, "b has not sent anything yet")
        XCTAssertEqual(book.newcomerAwaits["c"], [b], "b was named by a's handoff")
        let released = book.arrived([], of: "c", from: b, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a, b])
        XCTAssertEqual(released.map(\.id), ["from-b"], "heard from every holder: every awaited shard is released")
        XCTAssertNil(book.newcomerAwaits["c"])
    }

    /// Every holder's handoff can arrive before this node has seen every holder come up: its
    /// table then still places on itself shards that a holder it has not seen up owns, and a
    /// call served now would start a second process there.
    func testANewcomerHeardFromEveryHolderWaitsUntilItsTableNamesThemAll() {
        var book = HandoffBook()
        XCTAssertEqual(book.holdersChanged("c", others: [a], newcomer: true).count, 0)
        book.awaited[key(2)] = awaiting()
        XCTAssertTrue(book.hold(cast("early"), for: key(2)))
        _ = book.arrived([], of: "c", from: a, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a])
        let early = book.arrived([], of: "c", from: b, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a])
        XCTAssertEqual(early.count, 0, "heard from a and b, but the table does not route to b yet")
        XCTAssertEqual(book.newcomerAwaits["c"], [], "no handoff is missing any more")
        let released = book.holdersChanged("c", others: [a, b], newcomer: false)
        XCTAssertEqual(released.map(\.id), ["early"], "the table that names b releases the held call")
        XCTAssertNil(book.newcomerAwaits["c"])
    }

    /// A shard awaited from its previous owner is released by that owner's handoff only: a
    /// node that joined meanwhile names the shard too (it owned everything while alone), but
    /// never had its processes.
    func testAShardAwaitedFromItsPreviousOwnerIgnoresAnotherNodesHandoff() {
        var book = HandoffBook()
        book.awaited[key(1)] = awaiting(from: a)
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        let early = book.arrived([key(1)], of: "c", from: b, holders: [b, me], selfID: me, adopt: false, tableHolders: [a, b])
        XCTAssertEqual(early.count, 0, "b never had the shard")
        let released = book.arrived([key(1)], of: "c", from: a, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a, b])
        XCTAssertEqual(released.map(\.id), ["x"])
    }

    /// Giving up a wait releases only shards awaited since then or earlier: a shard released
    /// and awaited again later keeps its own, later, deadline.
    func testGivingUpAWaitLeavesALaterWaitForTheSameShard() {
        var book = HandoffBook()
        let first = ContinuousClock.now
        book.awaited[key(1)] = awaiting(from: a, since: first)
        _ = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, tableHolders: [a])
        book.awaited[key(1)] = awaiting(from: b, since: first + .seconds(1))
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        XCTAssertEqual(book.giveUp([key(1)], since: first).count, 0, "the first wait is over; the second is not")
        XCTAssertEqual(book.giveUp([key(1)], since: first + .seconds(1)).map(\.message.id), ["x"])
    }

    /// A newcomer's give-up timer that fires after a later rebalance began waits of its own
    /// leaves the newcomer's wait alone: the later waits are still released as soon as every
    /// holder has been heard from, not only at their own give-up.
    func testAnOlderGiveUpLeavesANewcomersLaterWaits() {
        var book = HandoffBook()
        let first = ContinuousClock.now
        XCTAssertEqual(book.holdersChanged("c", others: [a], newcomer: true).count, 0)
        book.awaited[key(1)] = awaiting(since: first)
        _ = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, heard: false, tableHolders: [a])
        book.awaited[key(2)] = awaiting(since: first + .seconds(1))
        XCTAssertTrue(book.hold(cast("x"), for: key(2)))
        XCTAssertEqual(book.holdersChanged("c", others: [a, b], newcomer: true).count, 0)
        XCTAssertEqual(book.giveUp([key(1)], since: first).count, 0, "the first wait is over")
        XCTAssertEqual(book.newcomerAwaits["c"], [a, b], "the later wait still awaits a and b")
        _ = book.arrived([], of: "c", from: a, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a, b])
        let released = book.arrived([], of: "c", from: b, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a, b])
        XCTAssertEqual(released.map(\.id), ["x"], "heard from every holder: the later wait ends at once")
    }

    /// A newcomer's give-up with no later wait running ends its wait for unheard holders.
    func testAGiveUpEndsANewcomersWaitForUnheardHolders() {
        var book = newcomer(holding: ["x"])
        let released = book.giveUp([key(1)], since: .now)
        XCTAssertEqual(released.map(\.message.id), ["x"])
        XCTAssertNil(book.newcomerAwaits["c"])
    }

    func testOnlyASenderThatKnowsUnseenHoldersIsWaitedFor() {
        var book = HandoffBook()
        let solo = ShardTable(owners: [me, me])
        let three = ShardTable(owners: [me, a, b])
        let view = { (table: ShardTable) in HolderView(count: table.holderCount, digest: table.holderDigest) }
        XCTAssertTrue(book.isBehind(view(three), capability: "c", current: solo), "the sender knows a and b")
        XCTAssertFalse(book.isBehind(view(solo), capability: "c", current: three), "fewer holders: never")
        XCTAssertFalse(book.isBehind(view(three), capability: "c", current: three))
        book.remember(three, of: "c")
        let two = ShardTable(owners: [me, a])
        XCTAssertFalse(book.isBehind(view(three), capability: "c", current: two), "a table this node had: the sender is behind")
    }

    /// The holders a sender's table dropped travel with its handoff (a receiver waits for its
    /// own table to drop them); a handoff without the field, from an older node, drops none.
    func testAHandoffMessageCarriesTheHoldersItsSenderDropped() throws {
        let sent = HandoffMessage(capability: "c", shards: [1, 2], processes: [("x", .int(3))], holders: [me, a], dropped: [b])
        let received = try XCTUnwrap(HandoffMessage(sent.value))
        XCTAssertEqual(received.dropped, [b])
        XCTAssertEqual(received.holders, [me, a])
        XCTAssertEqual(received.shards, [1, 2])
        XCTAssertEqual(received.processes.map(\.id), ["x"])
        let older = HandoffMessage(capability: "c", shards: [1], processes: [], holders: [me, a])
        XCTAssertNil(older.value["dropped"], "nothing dropped, no field")
        XCTAssertEqual(HandoffMessage(older.value)?.dropped, [])
    }

    /// A newcomer awaits every shard from any holder; a handoff that marks a shard pending
    /// (its processes are still on their way to the sender) keeps that one awaited when the
    /// newcomer has heard from every holder and releases the rest, until a handoff names it.
    func testAPendingShardStaysAwaitedUntilItsSenderNamesIt() {
        var book = newcomer(holding: ["pending", "other"])
        let now = ContinuousClock.now
        XCTAssertEqual(book.expect([key(1): a], since: now, forgettingBefore: now), [key(1)])
        let first = book.arrived([], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, tableHolders: [a])
        XCTAssertEqual(first.map(\.id), ["other"], "heard from every holder: all but the pending shard are released")
        XCTAssertEqual(book.awaited[key(1)]?.pending, true)
        XCTAssertEqual(book.giveUp([key(1)], since: now - .seconds(1)).count, 0, "an older timer leaves the pending wait")
        let second = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, tableHolders: [a])
        XCTAssertEqual(second.map(\.id), ["pending"])
    }

    /// Processes a leaving node handed to a node that passed them on release their shard
    /// when it is awaited from that leaver; a pass-on from another origin does not.
    func testAShardPassedOnFromItsLeaverIsReleased() {
        var book = HandoffBook()
        book.awaited[key(1)] = awaiting(from: b)
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        XCTAssertEqual(book.passedOn([key(1)], from: a).count, 0, "a is not where the shard comes from")
        XCTAssertEqual(book.passedOn([key(1)], from: b).map(\.id), ["x"])
    }

    /// Pending and relinquished shards, second messages and the origin of processes passed on
    /// travel with a handoff; a message without them has none.
    func testAHandoffMessageCarriesItsPendingShardsAndOrigin() throws {
        let sent = HandoffMessage(
            capability: "c", shards: [], processes: [], relinquished: [4, 5], holders: [me, a], pending: [1: a, 2: b, 3: a],
            isFollowUp: true, passedOn: true, origin: b)
        let received = try XCTUnwrap(HandoffMessage(sent.value))
        XCTAssertEqual(received.pending, [1: a, 2: b, 3: a])
        XCTAssertEqual(received.relinquished, [4, 5])
        XCTAssertTrue(received.isFollowUp)
        XCTAssertEqual(received.origin, b)
        XCTAssertTrue(received.passedOn)
        let plain = try XCTUnwrap(HandoffMessage(HandoffMessage(capability: "c", shards: [1], processes: [], holders: [a]).value))
        XCTAssertEqual(plain.pending, [:])
        XCTAssertEqual(plain.relinquished, [])
        XCTAssertFalse(plain.isFollowUp)
        XCTAssertNil(plain.origin)
    }

    /// A shard marked pending before this node's table placed it here starts its wait pending,
    /// if that wait starts soon enough; a handoff that names the shard first clears the hint.
    func testAPendingMarkThatArrivesBeforeTheWaitStillApplies() {
        var book = HandoffBook()
        let now = ContinuousClock.now
        XCTAssertEqual(book.expect([key(1): a, key(2): a, key(3): a], since: now, forgettingBefore: now), [], "nothing is awaited yet")
        _ = book.arrived([key(3)], of: "c", from: b, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [])
        book.startAwaiting(key(1), from: nil, since: now, hintsSince: now)
        book.startAwaiting(key(2), from: nil, since: now, hintsSince: now + .seconds(1))
        book.startAwaiting(key(3), from: nil, since: now, hintsSince: now)
        XCTAssertEqual(book.awaited[key(1)]?.pending, true)
        XCTAssertEqual(book.awaited[key(2)]?.pending, false, "the hint is too old")
        XCTAssertEqual(book.awaited[key(3)]?.pending, false, "the shard was named since")
        XCTAssertTrue(book.pendingHints.isEmpty)
    }

    /// A shard a newcomer relinquishes (it owned it while alone, without its processes)
    /// releases a wait from that newcomer, not a wait from any holder: another holder may have
    /// its processes.
    func testARelinquishedShardReleasesOnlyAWaitFromItsSender() {
        var book = HandoffBook()
        book.awaited[key(1)] = awaiting()
        book.awaited[key(2)] = awaiting(from: a)
        XCTAssertTrue(book.hold(cast("any"), for: key(1)))
        XCTAssertTrue(book.hold(cast("from-a"), for: key(2)))
        XCTAssertEqual(book.relinquished([key(1), key(2)], by: a).map(\.id), ["from-a"])
        XCTAssertNotNil(book.awaited[key(1)], "b may still hand it over")
    }

    /// A holder's second message (for shards its handoff left pending, sent with its later
    /// handoffs) releases what it names, but is not that holder's handoff for its newest
    /// table: a newcomer that has heard nothing else from it keeps waiting for it.
    func testASecondMessageIsNotTheSendersHandoff() {
        var book = newcomer(holding: ["named", "other"])
        let second = book.arrived([key(1)], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, heard: false, tableHolders: [a])
        XCTAssertEqual(second.map(\.id), ["named"])
        XCTAssertEqual(book.newcomerAwaits["c"], [a], "a's handoff is still to come")
        let handoff = book.arrived([], of: "c", from: a, holders: [a, me], selfID: me, adopt: true, tableHolders: [a])
        XCTAssertEqual(handoff.map(\.id), ["other"])
    }

    /// A shard awaited from `a` that a later table places here again from `b` (it went on to
    /// `b` meanwhile) is awaited from `b`, with the calls held for it; the give-up of the wait
    /// from `a` does not end it. (Before, the wait from `a` stayed and ended at its give-up
    /// time, and a call started afresh here the process that `b` was about to hand over.)
    func testAShardGainedAgainFromAnotherNodeIsAwaitedFromThatNode() {
        var book = HandoffBook()
        let start = ContinuousClock.now
        XCTAssertTrue(book.startAwaiting(key(1), from: a, since: start, hintsSince: start))
        XCTAssertTrue(book.hold(cast("x"), for: key(1)))
        let later = start + .seconds(1)
        XCTAssertFalse(book.startAwaiting(key(1), from: a, since: later, hintsSince: later), "a wait from a stays as it is")
        XCTAssertTrue(book.startAwaiting(key(1), from: b, since: later, hintsSince: later))
        XCTAssertEqual(book.awaited[key(1)]?.from, b)
        XCTAssertTrue(book.giveUp([key(1)], since: start).isEmpty, "the give-up of the wait from a ends nothing")
        XCTAssertTrue(book.arrived([key(1)], of: "c", from: a, holders: [a, b, me], selfID: me, adopt: true, tableHolders: [a, b]).isEmpty,
                      "a's handoff does not release it")
        let released = book.arrived([key(1)], of: "c", from: b, holders: [b, me], selfID: me, adopt: true, tableHolders: [b])
        XCTAssertEqual(released.map(\.id), ["x"], "b's handoff releases the call held since the wait from a")
    }

    /// A leaver's last handoff that does not name a shard awaited from it says the shard's
    /// processes were never there: the wait ends if another holder named the shard, and is
    /// from any holder otherwise. A shard it names or marks pending keeps its wait.
    func testALeaversLastHandoffDisclaimsTheShardsItDoesNotName() {
        var book = HandoffBook()
        let now = ContinuousClock.now
        for shard in 1...3 {
            book.startAwaiting(key(shard), from: a, since: now, hintsSince: now)
            XCTAssertTrue(book.hold(cast("x\(shard)"), for: key(shard)))
        }
        XCTAssertTrue(book.arrived([key(1)], of: "c", from: b, holders: [b, me], selfID: me, adopt: true, tableHolders: [b]).isEmpty,
                      "b's handoff alone does not release a wait from a")
        let released = book.disclaimed(by: a, of: "c", naming: [3])
        XCTAssertEqual(released.map(\.id), ["x1"], "named by b and disclaimed by a: its processes came from b")
        XCTAssertNil(book.awaited[key(2)]?.from, "disclaimed by a, named by nobody yet: awaited from any holder")
        XCTAssertEqual(book.awaited[key(3)]?.from, a, "a named it: its wait is unchanged")
        let fromB = book.arrived([key(2)], of: "c", from: b, holders: [b, me], selfID: me, adopt: true, tableHolders: [b])
        XCTAssertEqual(fromB.map(\.id), ["x2"])
    }

    /// A leaver speaks for the shards it hands over, relinquishes or marks pending from
    /// itself; not for those it marks pending from another node.
    func testALeaverSpeaksOnlyForTheShardsItVouchesFor() {
        let message = HandoffMessage(
            capability: "c", shards: [1], processes: [], relinquished: [2], holders: [me], dropped: [a],
            pending: [3: a, 4: b])
        XCTAssertEqual(message.shardsSpokenFor(by: a), [1, 2, 3])
    }
}
