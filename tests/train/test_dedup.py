from newsclf.train.data.dedup import find_duplicates

STORY = (
    "Floodwaters swept through three villages in the north of the province on Tuesday, destroying "
    "bridges and cutting power to thousands of homes, officials said. Rescue teams used boats to reach "
    "families stranded on rooftops while the regional governor declared a state of emergency."
)


def test_exact_copies_differing_only_in_case_space_and_punctuation_are_grouped():
    texts = [STORY, "  " + STORY.upper().replace(",", ""), "Something else entirely happened today."]
    report = find_duplicates(texts)
    assert report.keep == [0, 2] and report.removed == 1
    assert report.groups[0].indices == (0, 1) and report.groups[0].exact


def test_syndicated_copies_with_small_edits_are_near_duplicates():
    edited = STORY.replace("on Tuesday", "on Tuesday morning").replace("officials said", "local officials said")
    with_tag = "By Staff Reporter\n(Reuters) - " + STORY + "\nRead more: floods explained"
    report = find_duplicates([STORY, edited, with_tag])
    assert report.keep == [0] and report.removed == 2
    assert not report.groups[0].exact


def test_look_alikes_about_different_events_are_kept():
    texts = [
        "At least 12 people are killed when a bus plunges into a ravine in Nepal's Dhading district.",
        "At least 30 people are killed when a ferry capsizes on Lake Victoria near Mwanza, Tanzania.",
        "At least 12 people are killed when a truck collides with a train near Lahore, Pakistan.",
    ]
    assert find_duplicates(texts).removed == 0


def test_threshold_one_finds_exact_copies_only():
    edited = STORY.replace("three villages", "four villages")
    assert find_duplicates([STORY, edited], threshold=1.0).removed == 0
    assert find_duplicates([STORY, edited], threshold=0.8).removed == 1


def test_groups_are_transitive():
    first = STORY
    second = STORY.replace("Rescue teams", "Emergency crews")
    third = second.replace("regional governor", "provincial governor")
    report = find_duplicates([first, "unrelated text about a football match", third, second])
    assert report.keep == [0, 1] and report.groups[0].indices == (0, 2, 3)
