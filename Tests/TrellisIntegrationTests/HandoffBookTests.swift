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
}
