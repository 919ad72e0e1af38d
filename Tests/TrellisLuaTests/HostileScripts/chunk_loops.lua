-- expect: budgetExceeded load
-- spins while the chunk itself runs
while true do end
