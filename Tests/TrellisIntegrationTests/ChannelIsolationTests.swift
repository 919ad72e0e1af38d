import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisTransport
import TrellisWire
import XCTest

/// The membership channel has connections of its own: an application channel saturated by a
/// flood must not delay heartbeats enough for a peer to be marked down.
final class ChannelIsolationTests: XCTestCase {
    func testAFloodOnAnApplicationChannelMarksNoPeerDown() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes: [TrellisNode] = []
        for name in ["flooder", "flooded"] {
            var configuration = try NodeConfiguration(
                name: name, clusterName: "isolation", cookie: "c", overlayPath: ProcessTests.fullMesh)
            configuration.membership.heartbeatInterval = 100
            configuration.membership.failureTimeout = 1_000
            configuration.channels["bulk"] = ChannelSettings(parallelism: 2)
            nodes.append(try await TrellisNode.start(configuration, group: group))
        }
        let (flooder, flooded) = (nodes[0], nodes[1])
        await flooded.join(flooder.id)
        for _ in 0..<250 {
            let (a, b) = (await flooder.members.count, await flooded.members.count)
            if a == 2 && b == 2 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let downs = NIOLockedValueBox<[PeerID]>([])
        let watchers = nodes.map { node in
            Task {
                for await event in await node.memberEvents() {
                    if case .down(let peer) = event { downs.withLockedValue { $0.append(peer) } }
                }
            }
        }
        let received = NIOLockedValueBox(0)
        let consumer = Task {
            for await _ in flooded.messages { received.withLockedValue { $0 += 1 } }
        }
        let chunk = [UInt8](repeating: 0xab, count: 64 * 1024)
        var sent = 0
        let end = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < end {
            try await flooder.send(bytes: chunk, to: flooded.id, channel: "bulk", key: "k\(sent % 8)")
            sent += 1
        }
        try await Task.sleep(for: .milliseconds(700))
        XCTAssertGreaterThan(sent, 200, "the flood kept the channel busy (\(sent) chunks of 64 KiB)")
        XCTAssertGreaterThan(received.withLockedValue { $0 }, 0)
        XCTAssertEqual(downs.withLockedValue { $0 }, [], "no peer may be marked down during the flood")
        let flooderMembers = await flooder.members.count
        let floodedMembers = await flooded.members.count
        XCTAssertEqual([flooderMembers, floodedMembers], [2, 2])
        for watcher in watchers { watcher.cancel() }
        for node in nodes { await node.stop() }
        consumer.cancel()
        try await group.shutdownGracefully()
    }
}
