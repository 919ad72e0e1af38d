import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import Trellis

/// The mailbox a Lua actor's VM is confined to: one job at a time, in submission order, inline
/// when idle, and a submitter never drains what others queued.
final class SerialMailboxTests: XCTestCase {
    /// What the jobs record; only jobs touch `order`, so the mailbox alone must keep it sound.
    private final class Journal: @unchecked Sendable {
        // Safety: `order` is touched only inside mailbox jobs, which never overlap (checked by
        // `inside`, an atomic), so this test itself checks that claim.
        var order: [Int: [Int]] = [:]
        let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
    }

    func testJobsFromManyThreadsRunOneAtATimeInTheOrderEachThreadSubmittedThem() throws {
        let mailbox = SerialMailbox(label: "test.mailbox")
        let journal = Journal()
        let threads = 8
        let jobsPerThread = 2_000
        let done = DispatchGroup()
        for thread in 0..<threads {
            done.enter()
            Thread.detachNewThread {
                for sequence in 0..<jobsPerThread {
                    mailbox.submit {
                        if journal.inside.add(1, ordering: .sequentiallyConsistent).newValue != 1 {
                            journal.overlaps.add(1, ordering: .relaxed)
                        }
                        journal.order[thread, default: []].append(sequence)
                        journal.inside.subtract(1, ordering: .sequentiallyConsistent)
                    }
                }
                done.leave()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        let drained = expectation(description: "a last job after every other")
        let seen = Mutex<(overlaps: Int, order: [Int: [Int]])?>(nil)
        mailbox.submit {
            seen.withLock { $0 = (journal.overlaps.load(ordering: .relaxed), journal.order) }
            drained.fulfill()
        }
        wait(for: [drained], timeout: 30)
        let (overlaps, order) = try XCTUnwrap(seen.withLock { $0 })
        XCTAssertEqual(overlaps, 0, "two jobs ran at once")
        for thread in 0..<threads {
            XCTAssertEqual(order[thread], Array(0..<jobsPerThread), "thread \(thread)'s jobs ran out of order or were lost")
        }
    }

    func testAJobForAnIdleMailboxRunsAtOnceOnTheSubmittingThread() {
        let mailbox = SerialMailbox(label: "test.mailbox")
        let submitter = Thread.current
        let ranOn = Mutex<Thread?>(nil)
        mailbox.submit { ranOn.withLock { $0 = Thread.current } }
        XCTAssertTrue(ranOn.withLock { $0 } === submitter, "the job did not run inline before submit returned")
    }

    func testASubmitterRunsOnlyItsOwnJobWhileOthersQueueBehindIt() throws {
        let mailbox = SerialMailbox(label: "test.mailbox")
        let release = DispatchSemaphore(value: 0)
        let firstStarted = DispatchSemaphore(value: 0)
        let firstSubmitReturned = DispatchSemaphore(value: 0)
        let secondRanOn = Mutex<Thread?>(nil)
        let secondRan = expectation(description: "the queued job ran")
        let firstThread = Mutex<Thread?>(nil)
        Thread.detachNewThread {
            firstThread.withLock { $0 = Thread.current }
            mailbox.submit {
                firstStarted.signal()
                release.wait()
            }
            firstSubmitReturned.signal()
        }
        XCTAssertEqual(firstStarted.wait(timeout: .now() + 10), .success)
        mailbox.submit {
            secondRanOn.withLock { $0 = Thread.current }
            secondRan.fulfill()
        }
        XCTAssertNil(secondRanOn.withLock { $0 }, "the second job ran while the first was still running")
        release.signal()
        XCTAssertEqual(firstSubmitReturned.wait(timeout: .now() + 10), .success)
        wait(for: [secondRan], timeout: 10)
        let first = try XCTUnwrap(firstThread.withLock { $0 })
        XCTAssertFalse(secondRanOn.withLock { $0 } === first, "the first submitter drained a job it did not submit")
        XCTAssertFalse(secondRanOn.withLock { $0 } === Thread.current, "the second submitter ran its job after queueing it")
    }
}
