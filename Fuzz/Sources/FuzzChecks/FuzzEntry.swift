import Foundation

/// libFuzzer's way in: each fuzz executable forwards `LLVMFuzzerInitialize` and
/// `LLVMFuzzerTestOneInput` to one of these.
public struct FuzzEntry: Sendable {
    private let target: FuzzTarget

    public static let value = FuzzEntry(target: .value)
    public static let frame = FuzzEntry(target: .frame)
    public static let handshake = FuzzEntry(target: .handshake)

    /// With `TRELLIS_FUZZ_SEEDS=DIRECTORY` in the environment, writes the target's seed inputs
    /// to DIRECTORY/seed-<n> and exits; otherwise does nothing.
    public func initialize() -> CInt {
        guard let path = ProcessInfo.processInfo.environment["TRELLIS_FUZZ_SEEDS"] else { return 0 }
        let directory = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (index, input) in SeedCorpus.inputs(for: target).enumerated() {
                try Data(input).write(to: directory.appendingPathComponent("seed-\(index)"))
            }
        } catch {
            fatalError("writing seeds to \(path): \(error)")
        }
        exit(0)
    }

    /// Checks one input, trapping on a broken property so that libFuzzer saves the input.
    public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        do {
            try target.check(Array(UnsafeBufferPointer(start: data, count: size)))
        } catch {
            fatalError("\(target.rawValue): \(error)")
        }
        return 0
    }
}
