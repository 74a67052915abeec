-- What each stratum holds: matched positives, and negatives per pool.
SELECT 'positive' AS class, stratum, 'positive' AS pool, count(*) AS rows
FROM positives_strata
GROUP BY stratum
UNION ALL
SELECT 'negative' AS class, stratum, pool, count(*) AS rows
FROM negatives_strata
GROUP BY stratum, pool
