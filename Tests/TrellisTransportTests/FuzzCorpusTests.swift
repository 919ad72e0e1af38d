@testable import TrellisTransport

// The test that replays the committed corpus (Fuzz/corpus/<target>/) through the properties
// of FuzzProperties.swift in the normal `swift test`. Fuzz/Package.swift compiles this file
// too (symlinked into its FuzzChecks target, with TRELLIS_FUZZ defined, which leaves it empty).

#if !TRELLIS_FUZZ
import Foundation
import XCTest

/// Every committed fuzz input still satisfies every property of its target.
final class FuzzCorpusTests: XCTestCase {
    func testValueCorpus() throws { try replay(.value) }
    func testFrameCorpus() throws { try replay(.frame) }
    func testHandshakeCorpus() throws { try replay(.handshake) }

    private func replay(_ target: FuzzTarget) throws {
        let directory = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/\(target.rawValue)")
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertFalse(files.isEmpty, "no corpus in \(directory.path)")
        for file in files {
            let input = [UInt8](try Data(contentsOf: file))
            do {
                try target.check(input)
            } catch {
                XCTFail("Fuzz/corpus/\(target.rawValue)/\(file.lastPathComponent): \(error)")
            }
        }
    }
}
#endif
