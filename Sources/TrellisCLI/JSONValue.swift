import ArgumentParser
import Foundation
import Trellis
import TrellisWire

/// JSON text to `Value`, for configs given on the command line.
enum JSONValue {
    static func parse(_ text: String, what: String) throws -> Value {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ValidationError("\(what) is not valid JSON: \(error.localizedDescription)")
        }
        return Value(jsonObject: object)
    }
}
