import TrellisLua
import TrellisMembership
import TrellisTransport
import TrellisWire

/// Membership: what the overlay decided, the transport events that feed it, and the
/// directives it returns, carried out on the transport.
extension TrellisNode {
    /// The peers this node's overlay considers members, sorted; includes this node.
    public var members: [PeerID] { core.members }

    /// How many overlay callbacks have failed on this node.
    public var scriptErrors: Int { core.scriptErrors }

    /// The tags and capabilities a connected peer announced in its handshake.
    public func metadata(of peer: PeerID) -> PeerMetadata? { peerMetadata[peer] }

    /// Member up/down events from now on, for as long as the stream is consumed.
    public func memberEvents() -> AsyncStream<MemberEvent> {
        let (stream, continuation) = AsyncStream<MemberEvent>.makeStream()
        let key = nextSubscriber
        nextSubscriber += 1
        subscribers[key] = continuation
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(key) } }
        return stream
    }

    /// Forgets a subscriber whose stream ended.
    func unsubscribe(_ key: Int) { subscribers[key] = nil }

    /// Feeds a transport event to the membership core and placement, or logs it.
    func handle(_ event: TransportEvent) {
        switch event {
        case .connectionUp(let peer, let metadata):
            // A fresh handshake: a peer that left and came back under its name is not leaving.
            if !metadata.capabilities.isEmpty { leavingPeers.remove(peer) }
            peerMetadata[peer] = metadata
            handleMembership(.connectionUp(peer))
            updatePlacement()
        case .metadataChanged(let peer, let metadata):
            if metadata.capabilities.isEmpty, peerMetadata[peer]?.capabilities.isEmpty == false {
                // Only leavers that can still call here matter (`drain`): the others are
                // forgotten, so the set stays as small as the peers connected.
                let callers = transport.inboundPeers(on: .processes)
                leavingPeers = leavingPeers.filter(callers.contains)
                leavingPeers.insert(peer)
            } else if !metadata.capabilities.isEmpty {
                leavingPeers.remove(peer)
            }
            peerMetadata[peer] = metadata
            updatePlacement()
        case .connectionDown(let peer, let reason), .connectFailed(let peer, let reason):
            handleMembership(.connectionDown(peer, reason: reason))
        case .membershipMessage(let message, let from):
            admitMembership(.message(EncodedValue(message), from: from), from: from, message: message)
        case .heartbeatAck(let from):
            admitMembership(.heartbeatAck(from: from), from: from, message: nil)
        case .handshakeRejected(let remote, let reason):
            // Keyed by reason, not address: a flood from many ports costs a line every 10 s.
            guard let held = refusalLog.admit(reason, now: now) else { return }
            logger.warning("refused a connection", metadata: ["remote": "\(remote)", "reason": "\(reason)", "repeats_not_logged": "\(held)"])
        }
    }

    /// Runs `event` through the membership core and carries out what it decides.
    func handleMembership(_ event: MembershipEvent) {
        guard !stopped else { return }
        execute(core.handle(event, now: now))
    }

    /// Carries out the core's directives on the transport, and tells subscribers, the
    /// broadcast relay and placement when the members changed.
    func execute(_ directives: [MembershipDirective]) {
        metrics.observe(directives, memberCount: core.members.count, downReports: core.downReports)
        var membersChanged = false
        // Connections close once the tables no longer route calls to the departed peers. A
        // leaving node keeps its `processes` connections: it forwards calls on them until it stops.
        var departed: [PeerID] = []
        defer {
            if membersChanged {
                relay.setMembers(core.members)
                updatePlacement()
                // Calls held while joining route by the tables that include the new member.
                if core.members.contains(where: { $0 != id }) { router.joinGate.open() }
            }
            for peer in departed { transport.disconnect(from: peer, keeping: leaving ? [.processes] : []) }
        }
        for directive in directives {
            switch directive {
            case .connect(let peer):
                transport.connect(to: peer)
            case .disconnect(let peer):
                departed.append(peer)
                peerMetadata[peer] = nil
            case .send(let message, let peer):
                transport.sendMembership(message, to: peer)
            case .sendHeartbeat(let peer):
                transport.sendHeartbeat(to: peer)
            case .memberUp(let peer):
                membersChanged = true
                logger.info("member up", metadata: ["peer": "\(peer)"])
                publish(.up(peer))
            case .memberDown(let peer):
                membersChanged = true
                logger.info("member down", metadata: ["peer": "\(peer)"])
                publish(.down(peer))
            case .scriptFailed(let error):
                guard let held = failureLog.admit(error.description, now: now) else { continue }
                logger.error(
                    "overlay script failed; previous state and members kept",
                    metadata: ["error": "\(error)", "repeats_not_logged": "\(held)"]
                )
            }
        }
    }

    /// Tells every subscriber of `memberEvents()`.
    func publish(_ event: MemberEvent) {
        for subscriber in subscribers.values { subscriber.yield(event) }
    }
}

/// A change in this node's member list.
public enum MemberEvent: Sendable, Equatable {
    case up(PeerID)
    case down(PeerID)
}
