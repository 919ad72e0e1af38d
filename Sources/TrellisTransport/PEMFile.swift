#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the files of `TLSSettings`, so that one that is missing or unreadable is reported as
/// such, apart from one that is readable but holds no PEM.
enum PEMFile {
    /// The whole file at `path`.
    static func read(_ file: TLSSettingsError.File, at path: String) throws(TLSSettingsError) -> [UInt8] {
        guard let handle = fopen(path, "rb") else {
            throw .unreadable(file, path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            bytes += chunk[..<count]
            if count < chunk.count { break }
        }
        if ferror(handle) != 0 {
            // A directory opens, then fails here with EISDIR.
            throw .unreadable(file, path: path, reason: String(cString: strerror(errno)))
        }
        return bytes
    }
}
