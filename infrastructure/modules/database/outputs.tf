output "url_secret_arn" {
  description = "Secret whose value is the postgres:// URL, which the dashboard's tasks get as ASCEP_DASHBOARD__DATABASE_URL."
  value       = aws_secretsmanager_secret.this["url"].arn
}
