"""Lab graders (one module per lab) and the catalog `refarch lab NN` grades from; docs in docs/labs/."""
