/// The record types a resolver asks for.
public enum DNSRecordType: UInt16, Sendable {
    case a = 1
    case aaaa = 28
    case srv = 33
}

/// The data of one resource record; addresses are in their text form (`10.1.2.3`, and
/// `fd00::1` as RFC 5952 writes IPv6 addresses).
public enum DNSRecordData: Sendable, Equatable {
    case a(String)
    case aaaa(String)
    case cname(String)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    /// A record of another type, skipped.
    case other(type: UInt16)
}

/// One resource record. Names are lowercase, without the trailing dot.
public struct DNSRecord: Sendable, Equatable {
    public var name: String
    public var ttl: UInt32
    public var data: DNSRecordData
}

/// A parsed reply: its header, question and the records of its answer and additional sections.
public struct DNSResponse: Sendable, Equatable {
    public var id: UInt16
    /// The response code: 0 no error, 3 no such name (NXDOMAIN).
    public var rcode: UInt8
    /// The server cut the reply to fit a datagram; ask again over TCP.
    public var truncated: Bool
    /// The question the reply answers (lowercase name and type), if it repeats one.
    public var question: (name: String, type: UInt16)?
    public var answers: [DNSRecord]
    public var additionals: [DNSRecord]

    public static func == (lhs: DNSResponse, rhs: DNSResponse) -> Bool {
        lhs.id == rhs.id && lhs.rcode == rhs.rcode && lhs.truncated == rhs.truncated
            && lhs.question?.name == rhs.question?.name && lhs.question?.type == rhs.question?.type
            && lhs.answers == rhs.answers && lhs.additionals == rhs.additionals
    }

    /// The addresses (A and AAAA) of `name` in the answer and additional sections, following
    /// CNAMEs (at most 8).
    public func addresses(of name: String) -> [String] {
        let records = answers + additionals
        var current = name
        for _ in 0..<8 {
            let owned = records.filter { $0.name == current }
            let addresses = owned.compactMap { record -> String? in
                switch record.data {
                case .a(let address), .aaaa(let address): return address
                default: return nil
                }
            }
            if !addresses.isEmpty { return addresses }
            guard let alias = owned.lazy.compactMap({ if case .cname(let target) = $0.data { target } else { nil } }).first
            else { return [] }
            current = alias
        }
        return []
    }
}

/// Builds queries and parses replies (RFC 1035, with EDNS0 from RFC 6891).
enum DNSWire {
    /// A query for `name` and `type`, with recursion desired and, when `udpPayloadSize` is
    /// given, an EDNS0 record offering replies that large.
    static func query(id: UInt16, name: String, type: DNSRecordType, udpPayloadSize: UInt16?) throws(DNSError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for field in [id, 0x0100, 1, 0, 0, udpPayloadSize == nil ? 0 : 1] { append(field, to: &bytes) }
        bytes += try encode(name: name)
        append(type.rawValue, to: &bytes)
        append(1, to: &bytes)  // class IN
        if let size = udpPayloadSize {
            bytes.append(0)  // root name
            for field in [41, size, 0, 0, 0] { append(field, to: &bytes) }  // OPT, size, ttl 0, no data
        }
        return bytes
    }

    /// `name` in the wire's label form.
    static func encode(name: String) throws(DNSError) -> [UInt8] {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        guard !trimmed.isEmpty else { throw .invalidName(name, "it is empty") }
        var bytes: [UInt8] = []
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty else { throw .invalidName(name, "it has an empty label ('..')") }
            guard utf8.count <= 63 else { throw .invalidName(name, "label '\(label)' is longer than 63 bytes") }
            guard utf8.allSatisfy({ $0 < 0x80 && ($0 == 0x2D || $0 == 0x5F || isAlphanumeric($0)) }) else {
                throw .invalidName(name, "label '\(label)' has characters other than letters, digits, '-' and '_'")
            }
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes.append(0)
        guard bytes.count <= 255 else { throw .invalidName(name, "it is longer than 255 bytes") }
        return bytes
    }

    /// Parses a reply. Any inconsistency (a record running past the end, a compression loop,
    /// a bad address length) throws ``DNSError/malformed(_:)``; nothing traps.
    static func parse(_ bytes: [UInt8]) throws(DNSError) -> DNSResponse {
        var reader = DNSReader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        guard flags & 0x8000 != 0 else { throw .malformed("the message is a query, not a reply") }
        let counts = [try reader.u16(), try reader.u16(), try reader.u16(), try reader.u16()]
        var response = DNSResponse(
            id: id, rcode: UInt8(flags & 0x000F), truncated: flags & 0x0200 != 0, question: nil, answers: [], additionals: [])
        for index in 0..<Int(counts[0]) {
            let name = try reader.name()
            let type = try reader.u16()
            _ = try reader.u16()  // class
            if index == 0 { response.question = (name, type) }
        }
        // A truncated reply may end anywhere; the caller asks again over TCP.
        if response.truncated { return response }
        for _ in 0..<Int(counts[1]) { response.answers.append(try reader.record()) }
        for _ in 0..<Int(counts[2]) { _ = try reader.record() }
        for _ in 0..<Int(counts[3]) { response.additionals.append(try reader.record()) }
        return response
    }

    private static func append(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}

/// A bounds-checked cursor over a reply.
private struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func u8() throws(DNSError) -> UInt8 {
        guard offset < bytes.count else { throw .malformed("it ends early, at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSError) -> UInt16 {
        UInt16(try u8()) << 8 | UInt16(try u8())
    }

    mutating func u32() throws(DNSError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    mutating func take(_ count: Int) throws(DNSError) -> ArraySlice<UInt8> {
        guard count <= bytes.count - offset else { throw .malformed("a field of \(count) bytes runs past the end, at byte \(offset)") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// A name, following compression pointers. Each pointer must point before itself, so a
    /// name cannot loop; its length is capped at 255 bytes as RFC 1035 says.
    mutating func name() throws(DNSError) -> String {
        var labels: [String] = []
        var position = offset
        var length = 1
        var resume: Int?
        while true {
            guard position < bytes.count else { throw .malformed("a name runs past the end, at byte \(position)") }
            let head = bytes[position]
            switch head & 0xC0 {
            case 0xC0:
                guard position + 1 < bytes.count else { throw .malformed("a compression pointer is cut off, at byte \(position)") }
                let target = Int(head & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < position else { throw .malformed("a compression pointer at byte \(position) does not point backwards") }
                if resume == nil { resume = position + 2 }
                position = target
            case 0x00:
                if head == 0 {
                    offset = resume ?? position + 1
                    return labels.joined(separator: ".")
                }
                let end = position + 1 + Int(head)
                guard end <= bytes.count else { throw .malformed("a label runs past the end, at byte \(position)") }
                length += Int(head) + 1
                guard length <= 255 else { throw .malformed("a name is longer than 255 bytes") }
                let label = bytes[(position + 1)..<end].map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
                labels.append(String(decoding: label, as: UTF8.self))
                position = end
            default:
                throw .malformed("label type 0x\(String(head & 0xC0, radix: 16)) at byte \(position) is not supported")
            }
        }
    }

    mutating func record() throws(DNSError) -> DNSRecord {
        let owner = try name()
        let type = try u16()
        _ = try u16()  // class
        let ttl = try u32()
        let length = Int(try u16())
        guard length <= bytes.count - offset else {
            throw .malformed("the data of a record of \(owner) runs past the end, at byte \(offset)")
        }
        let end = offset + length
        let data: DNSRecordData
        switch type {
        case DNSRecordType.a.rawValue:
            guard length == 4 else { throw .malformed("an A record of \(owner) has \(length) bytes, not 4") }
            data = .a(IPText.v4(try take(4)))
        case DNSRecordType.aaaa.rawValue:
            guard length == 16 else { throw .malformed("an AAAA record of \(owner) has \(length) bytes, not 16") }
            data = .aaaa(IPText.v6(try take(16)))
        case 5:
            data = .cname(try name())
        case DNSRecordType.srv.rawValue:
            guard length >= 7 else { throw .malformed("an SRV record of \(owner) has \(length) bytes, fewer than 7") }
            data = .srv(priority: try u16(), weight: try u16(), port: try u16(), target: try name())
        default:
            data = .other(type: type)
            offset = end
        }
        guard offset == end else { throw .malformed("the data of a record of \(owner) is not \(length) bytes long") }
        return DNSRecord(name: owner, ttl: ttl, data: data)
    }
}

/// Text forms of addresses.
enum IPText {
    static func v4(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map(String.init).joined(separator: ".")
    }

    /// RFC 5952: lowercase hex without leading zeros, the longest run of two or more zero
    /// groups (the first of equal runs) written `::`.
    static func v6(_ bytes: ArraySlice<UInt8>) -> String {
        let start = bytes.startIndex
        let groups = (0..<8).map { UInt16(bytes[start + 2 * $0]) << 8 | UInt16(bytes[start + 2 * $0 + 1]) }
        var best: Range<Int>?
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index >= 2 && end - index > (best?.count ?? 0) { best = index..<end }
            index = end
        }
        let text = { (range: Range<Int>) in groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard let best else { return text(0..<8) }
        return text(0..<best.lowerBound) + "::" + text(best.upperBound..<8)
    }
}
