"""secrets: secrets and config maps as environment variables and as files.

Needs (made with `coracle secret create` / `coracle configmap create`): secret `db-creds` with keys
`username`, `password`; secret `api-token` with key `token`; config map `app-config` with key
`mode`.

* `pick-secret` (lightweight) returns "api-token": the name of the second secret comes from an
  upstream output, as KFP allows.
* `use-secrets` (lightweight): `db-creds` (named by parameter `secret_name`) as variables
  DB_USER/DB_PASSWORD and as files under /mnt/creds; the secret `pick-secret` named as API_TOKEN;
  `app-config` (named by parameter `config_name`) as APP_MODE and as files under /etc/app; plain
  variable GREETING=hi. It prints `password is <DB_PASSWORD>` (the log must show it masked) and
  returns a summary that holds no secret value:
  `user_len=<n>;password_matches_file=<bool>;token_len=<n>;mode=<APP_MODE>;mode_file=<file>;greeting=hi`.
"""
import os
import sys

from kfp import compiler, dsl, kubernetes


@dsl.component(base_image="python:3.11")
def pick_secret() -> str:
    return "api-token"


@dsl.component(base_image="python:3.11")
def use_secrets() -> str:
    import os

    password = os.environ["DB_PASSWORD"]
    print(f"password is {password}")
    with open("/mnt/creds/password") as f:
        from_file = f.read()
    with open("/etc/app/mode") as f:
        mode_file = f.read()
    return (
        f"user_len={len(os.environ['DB_USER'])};"
        f"password_matches_file={from_file == password};"
        f"token_len={len(os.environ['API_TOKEN'])};"
        f"mode={os.environ['APP_MODE']};mode_file={mode_file};"
        f"greeting={os.environ['GREETING']}"
    )


@dsl.pipeline(name="secrets", description="secrets and config maps as variables and files")
def secrets(secret_name: str = "db-creds", config_name: str = "app-config") -> str:
    pick = pick_secret()
    use = use_secrets().set_caching_options(False)
    use.set_env_variable("GREETING", "hi")
    kubernetes.use_secret_as_env(
        use,
        secret_name=secret_name,
        secret_key_to_env={"username": "DB_USER", "password": "DB_PASSWORD"},
    )
    kubernetes.use_secret_as_volume(use, secret_name=secret_name, mount_path="/mnt/creds")
    kubernetes.use_secret_as_env(
        use, secret_name=pick.output, secret_key_to_env={"token": "API_TOKEN"}
    )
    kubernetes.use_config_map_as_env(
        use, config_map_name=config_name, config_map_key_to_env={"mode": "APP_MODE"}
    )
    kubernetes.use_config_map_as_volume(use, config_map_name=config_name, mount_path="/etc/app")
    return use.output


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(secrets, sys.argv[1] if len(sys.argv) > 1 else default)
