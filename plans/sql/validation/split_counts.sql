-- Checked rows by split and class.
SELECT split, label, count(*) AS n
FROM checks
GROUP BY split, label
