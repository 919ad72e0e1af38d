import CLuaShim
import TrellisWire

extension LuaVM.CallResults {
    /// Return value `position` as overlay messages, each `msg` encoded by the C encoder without
    /// becoming a `Value`; `nil` when it takes the careful path instead (an unusual shape, a
    /// value outside the contract, a limit reached), whose reader accepts or reports it.
    func encodedMessages(at position: Int32) -> [OverlayMessage]? {
        let handle = vm.handle
        let count = trellis_encode_messages(
            handle, position, Int32(clamping: vm.limits.maxValueDepth), Int64(vm.limits.maxValueElements),
            Int64(vm.limits.maxValueBytes))
        guard count > 0 else { return count == 0 ? [] : nil }
        guard let base = trellis_encoded_bytes(handle), let records = trellis_encoded_messages(handle) else { return nil }
        return (0..<Int(count)).map { index in
            let record = records[index]
            let to = String(decoding: UnsafeBufferPointer(start: base + record.to_offset, count: record.to_length), as: UTF8.self)
            let message = Array(UnsafeBufferPointer(start: base + record.message_offset, count: record.message_length))
            return OverlayMessage(to: to, message: EncodedValue(encoding: message))
        }
    }
}
