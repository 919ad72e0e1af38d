import Foundation
import NIOCore
import NIOPosix

/// A minimal stub resolver: asks one DNS server for A, AAAA or SRV records over UDP, and over
/// TCP when the server says the UDP reply was truncated.
///
/// Each try waits `timeout` for a reply whose id and question match the query (any other
/// datagram is ignored); after `attempts` tries it throws ``DNSError/timeout(server:wait:attempts:)``.
/// Every query uses a fresh socket on a random port and a random id.
public struct DNSResolver: Sendable {
    /// The server asked, e.g. `10.96.0.10:53`.
    public let server: SocketAddress
    /// How long one try waits for the reply.
    public var timeout: Duration
    /// How many tries before giving up.
    public var attempts: Int
    /// The UDP reply size offered through EDNS0; larger replies come truncated, then over TCP.
    public var udpPayloadSize: UInt16
    private let group: any EventLoopGroup

    /// A resolver asking `server`, an IP address with an optional port (53 by default):
    /// `10.96.0.10`, `127.0.0.1:5353`, `[fd00::a]:53`.
    ///
    /// - Throws: ``DNSError/invalidServer(_:_:)`` when `server` is not such an address, or a
    ///   setting is out of range.
    public init(
        server: String, timeout: Duration = .seconds(2), attempts: Int = 2, udpPayloadSize: UInt16 = 1232,
        group: any EventLoopGroup
    ) throws(DNSError) {
        guard timeout > .zero, attempts >= 1 else { throw .invalidServer(server, "timeout and attempts must be positive") }
        guard udpPayloadSize >= 512 else { throw .invalidServer(server, "the UDP payload size must be at least 512") }
        self.server = try Self.parse(server: server)
        self.timeout = timeout
        self.attempts = attempts
        self.udpPayloadSize = udpPayloadSize
        self.group = group
    }

    /// The first `nameserver` of a resolv.conf file (in a Kubernetes pod, the cluster's DNS
    /// service), as `address:53`.
    ///
    /// - Throws: ``DNSError/invalidServer(_:_:)`` when the file is unreadable or names none.
    public static func systemServer(resolvConf path: String = "/etc/resolv.conf") throws(DNSError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .invalidServer(path, "cannot read it; pass the server's address instead")
        }
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "nameserver" {
                let address = String(fields[1])
                return address.contains(":") ? "[\(address)]:53" : "\(address):53"
            }
        }
        throw .invalidServer(path, "it names no nameserver; pass the server's address instead")
    }

    /// Asks for the `type` records of `name`. An answer with no such name (NXDOMAIN) or no
    /// records of that type comes back as a reply with no answers, not as an error.
    ///
    /// - Throws: ``DNSError`` when the name is invalid, no reply comes, the reply is malformed,
    ///   or the server answers another error code.
    public func query(_ name: String, _ type: DNSRecordType) async throws(DNSError) -> DNSResponse {
        let normalized = (name.hasSuffix(".") ? String(name.dropLast()) : name).lowercased()
        for _ in 0..<attempts {
            let id = UInt16.random(in: .min ... .max)
            let query = try DNSWire.query(id: id, name: normalized, type: type, udpPayloadSize: udpPayloadSize)
            let match = ReplyMatch(id: id, name: normalized, type: type.rawValue)
            guard var response = try await exchange(query, match: match, overTCP: false) else { continue }
            if response.truncated {
                guard let full = try await exchange(query, match: match, overTCP: true) else { continue }
                guard !full.truncated else { throw .malformed("the reply over TCP is truncated too") }
                response = full
            }
            guard response.rcode == 0 || response.rcode == 3 else { throw .serverError(name: normalized, rcode: response.rcode) }
            return response
        }
        throw .timeout(server: serverText, wait: timeout, attempts: attempts)
    }

    /// The server as `address:port`, for messages.
    private var serverText: String {
        let address = server.ipAddress ?? "\(server)"
        return server.protocol == .inet6 ? "[\(address)]:\(server.port ?? 53)" : "\(address):\(server.port ?? 53)"
    }

    /// One try over UDP or TCP: the matching reply, or nil when none came in time.
    private func exchange(_ query: [UInt8], match: ReplyMatch, overTCP: Bool) async throws(DNSError) -> DNSResponse? {
        let loop = group.next()
        let promise = loop.makePromise(of: DNSResponse?.self)
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { promise.succeed(nil) }
        defer { timer.cancel() }
        let server = self.server
        let channel: any Channel
        do {
            if overTCP {
                channel = try await ClientBootstrap(group: loop)
                    .connectTimeout(TimeAmount(timeout))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TCPReplyHandler(match: match, promise: promise))
                        }
                    }
                    .connect(to: server).get()
                var frame = ByteBuffer()
                frame.writeInteger(UInt16(query.count))
                frame.writeBytes(query)
                channel.writeAndFlush(frame).whenFailure { promise.fail($0) }
            } else {
                channel = try await DatagramBootstrap(group: loop)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = UDPReplyHandler(server: server, match: match, promise: promise)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                    }
                    .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
                let envelope = AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query))
                channel.writeAndFlush(envelope).whenFailure { promise.fail($0) }
            }
        } catch {
            promise.succeed(nil)
            throw .network(server: serverText, "\(error)")
        }
        defer { channel.close(promise: nil) }
        do {
            return try await promise.futureResult.get()
        } catch let error as DNSError {
            throw error
        } catch {
            throw .network(server: serverText, "\(error)")
        }
    }

    private static func parse(server text: String) throws(DNSError) -> SocketAddress {
        var host = text
        var port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else { throw .invalidServer(text, "bad port") }
                port = number
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let number = Int(text[text.index(after: colon)...]) else { throw .invalidServer(text, "bad port") }
            port = number
        }
        guard (1...65535).contains(port) else { throw .invalidServer(text, "the port must be from 1 to 65535") }
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw .invalidServer(text, "'\(host)' is not an IP address")
        }
    }
}

/// Which reply answers a query.
private struct ReplyMatch: Sendable {
    let id: UInt16
    let name: String
    let type: UInt16

    /// Whether `bytes` carry this query's id: only then is a parse failure the server's.
    func isOurs(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id
    }

    func answers(_ response: DNSResponse) -> Bool {
        response.id == id && response.question?.name == name && response.question?.type == type
    }
}

/// Completes the promise with the first datagram from the server that answers the query.
private final class UDPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let server: SocketAddress
    private let match: ReplyMatch
    private let promise: EventLoopPromise<DNSResponse?>

    init(server: SocketAddress, match: ReplyMatch, promise: EventLoopPromise<DNSResponse?>) {
        self.server = server
        self.match = match
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Datagrams from elsewhere, or with another id, are strangers' (or stale): ignored.
        let bytes = Array(envelope.data.readableBytesView)
        guard envelope.remoteAddress == server, match.isOurs(bytes) else { return }
        do {
            let response = try DNSWire.parse(bytes)
            if match.answers(response) { promise.succeed(response) }
        } catch {
            promise.fail(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}

/// Completes the promise with the first length-prefixed reply on a TCP connection.
private final class TCPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let match: ReplyMatch
    private let promise: EventLoopPromise<DNSResponse?>
    private var buffer = ByteBuffer()

    init(match: ReplyMatch, promise: EventLoopPromise<DNSResponse?>) {
        self.match = match
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            let bytes = buffer.getBytes(at: buffer.readerIndex + 2, length: Int(length))
        else { return }
        do {
            let response = try DNSWire.parse(bytes)
            guard match.answers(response) else { throw DNSError.malformed("the TCP reply answers another question") }
            promise.succeed(response)
        } catch {
            promise.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSError.malformed("the server closed the TCP connection before a whole reply"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}
