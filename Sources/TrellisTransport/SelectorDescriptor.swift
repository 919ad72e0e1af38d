#if os(Linux)
import Glibc
import NIOCore

/// Finds, through `/proc/self`, the epoll instance an event loop waits on.
///
/// NIO does not publish its descriptors. A connected socket is found by its two addresses
/// (`getsockname` and `getpeername`), and the event loop's epoll instance is the one whose
/// `/proc/self/fdinfo` entry lists that socket among its targets.
enum SelectorDescriptor {
    /// The epoll descriptor that watches the socket of a channel with these addresses, or
    /// `nil` when `/proc` cannot tell.
    static func epoll(watchingSocketFrom local: SocketAddress, to remote: SocketAddress) -> CInt? {
        guard let socket = descriptors(linkedTo: "socket:").first(where: { connects($0, local, remote) }) else { return nil }
        return descriptors(linkedTo: "anon_inode:[eventpoll]").first { watches($0, socket) }
    }

    /// This process's open descriptors whose `/proc/self/fd` link starts with `prefix`.
    private static func descriptors(linkedTo prefix: String) -> [CInt] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var found: [CInt] = []
        var target = [CChar](repeating: 0, count: 64)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let descriptor = CInt(name) else { continue }
            let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
            guard length > 0 else { continue }
            let link = target.prefix(length).withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            if link.hasPrefix(prefix) { found.append(descriptor) }
        }
        return found
    }

    /// Whether `socket` is connected from `local` to `remote`.
    private static func connects(_ socket: CInt, _ local: SocketAddress, _ remote: SocketAddress) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0, matches(storage, local) else { return false }
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let peered = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) }
        }
        return peered == 0 && matches(storage, remote)
    }

    /// Whether `storage` holds the family, port and IP address of `address`.
    private static func matches(_ storage: sockaddr_storage, _ address: SocketAddress) -> Bool {
        var storage = storage
        return address.withSockAddr { pointer, _ in
            withUnsafeBytes(of: &storage) { raw in
                switch Int32(pointer.pointee.sa_family) {
                case AF_INET:
                    let theirs = raw.load(as: sockaddr_in.self)
                    let ours = UnsafeRawPointer(pointer).load(as: sockaddr_in.self)
                    return Int32(theirs.sin_family) == AF_INET && theirs.sin_port == ours.sin_port
                        && theirs.sin_addr.s_addr == ours.sin_addr.s_addr
                case AF_INET6:
                    let theirs = raw.load(as: sockaddr_in6.self)
                    let ours = UnsafeRawPointer(pointer).load(as: sockaddr_in6.self)
                    return Int32(theirs.sin6_family) == AF_INET6 && theirs.sin6_port == ours.sin6_port
                        && withUnsafeBytes(of: theirs.sin6_addr) { a in withUnsafeBytes(of: ours.sin6_addr) { a.elementsEqual($0) } }
                default:
                    return false
                }
            }
        }
    }

    /// Whether the epoll instance `epoll` lists `socket` among its targets (a `tfd:` line).
    private static func watches(_ epoll: CInt, _ socket: CInt) -> Bool {
        guard let file = fopen("/proc/self/fdinfo/\(epoll)", "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, CInt(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("tfd:") else { continue }
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count > 1, CInt(fields[1]) == socket { return true }
        }
        return false
    }
}
#endif
