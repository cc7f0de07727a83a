from messagestore import ids


def test_ids_are_increasing_integers_below_2_53():
    last = None
    seen = []
    for _ in range(10000):
        last = ids.next_id(last)
        seen.append(last)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert all(0 < i < 2**53 for i in seen)


def test_id_never_goes_back_even_if_the_clock_does():
    far_future = ids.next_id(None) + (10_000 << ids.SEQUENCE_BITS)
    assert ids.next_id(far_future) == far_future + 1


def test_id_encodes_its_time():
    from datetime import UTC, datetime

    message_id = ids.next_id(None)
    assert abs((ids.id_time(message_id) - datetime.now(UTC)).total_seconds()) < 5
