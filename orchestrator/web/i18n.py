"""French first, English too: the pages' texts, and the language of a request."""

from __future__ import annotations

LANGUAGES = ("fr", "en")

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "site": "Services de {collective}",
        "skip": "Aller au contenu",
        "home": "Accueil",
        "signin_failed": "Ce lien de connexion n'est pas (ou plus) valable. Demandez-en un nouveau aux admins de {collective}.",
        "signed_out": "Vous êtes déconnecté·e.",
        "signout": "Se déconnecter",
        "dashboard": "Espace de {association}",
        "instances": "Vos services",
        "no_instances": "Aucun service pour l'instant.",
        "service": "Service",
        "address": "Adresse",
        "state": "État",
        "health": "Santé",
        "last_backup": "Dernière sauvegarde",
        "never": "jamais",
        "version": "Version",
        "update": "Mise à jour",
        "upgrade_running": "mise à jour en cours vers {to}",
        "upgrade_succeeded": "mise à jour vers {to} le {at}",
        "upgrade_rolled_back": "mise à jour vers {to} annulée le {at} : la version {version} fonctionne, vos données sont intactes",
        "upgrade_rollback_failed": "mise à jour vers {to} en échec le {at} : les admins sont prévenus",
        "upgrade_refused": "mise à jour vers {to} reportée le {at}",
        "quota": "Votre offre",
        "quota_line": "{instances} service(s) sur {max_instances} ; mémoire {memory} Mio sur {max_memory} ; disque {disk} Gio sur {max_disk}",
        "no_offer": "Pas d'offre : les admins fixent vos limites.",
        "requests": "Vos demandes",
        "no_requests": "Aucune demande.",
        "request_new": "Demander un service",
        "request_for": "Demander {service}",
        "name": "Nom du service (lettres minuscules, chiffres, tirets)",
        "size": "Taille",
        "send": "Envoyer la demande",
        "sent": "Demande envoyée : les admins vont l'examiner.",
        "required": "obligatoire",
        "errors": "La demande n'a pas été envoyée :",
        "reason": "Motif",
        "progress": "Avancement",
        "progress_started": "démarrage de l'installation",
        "progress_step": "étape : {step}",
        "progress_health": "vérification que le service répond",
        "progress_finished": "terminé",
        "progress_failed": "arrêté sur une erreur : les admins la verront",
        "progress_interrupted": "interrompu, l'installation va reprendre",
        "progress_working": "en cours",
        "request": "Demande n°{id}",
        "back": "Retour à votre espace",
        "small": "petite", "medium": "moyenne", "large": "grande",
        "pending": "en attente", "approved": "acceptée", "rejected": "refusée", "provisioning": "en cours d'installation",
        "done": "installée", "failed": "échec", "running": "en service", "planned": "prévue", "suspended": "suspendue",
        "deleted": "supprimée", "healthy": "répond", "unhealthy": "ne répond pas", "unknown": "inconnue", "stopped": "arrêtée",
        "not_found": "Page introuvable.",
        "too_large": "Requête trop volumineuse.",
        "too_many": "Trop de tentatives : réessayez dans une minute.",
        "bad_form": "Le formulaire a expiré : rechargez la page et recommencez.",
        "language": "English",
        "admin_signin": "Connexion des admins",
        "admin_name": "Identifiant",
        "password": "Mot de passe",
        "signin": "Se connecter",
        "wrong_password": "Identifiant ou mot de passe incorrect.",
        "review": "Demandes à examiner",
        "recent": "Demandes traitées récemment",
        "approve": "Accepter",
        "reject": "Refuser",
        "reason_needed": "Indiquez un motif de refus (1000 caractères au plus) : l'association le lira.",
        "association": "Association",
        "parameters": "Paramètres",
        "join": "Demander à rejoindre {collective}",
        "join_intro": "Votre association n'est pas encore hébergée ? Présentez-la : les admins vous répondront par e-mail.",
        "join_slug": "Nom court (lettres minuscules, chiffres, tirets ; il apparaîtra dans vos adresses)",
        "join_name": "Nom de l'association",
        "join_email": "Adresse e-mail de contact",
        "join_message": "Quelques mots sur vos besoins (facultatif)",
        "join_send": "Envoyer",
        "applied": "Merci ! Les admins de {collective} vont étudier votre demande.",
        "applications": "Associations qui demandent à rejoindre",
        "accept": "Accepter",
        "offer": "Offre",
    },
    "en": {
        "site": "{collective}'s services",
        "skip": "Skip to content",
        "home": "Home",
        "signin_failed": "This sign-in link is not (or no longer) valid. Ask {collective}'s admins for a new one.",
        "signed_out": "You are signed out.",
        "signout": "Sign out",
        "dashboard": "{association}'s space",
        "instances": "Your services",
        "no_instances": "No service yet.",
        "service": "Service",
        "address": "Address",
        "state": "State",
        "health": "Health",
        "last_backup": "Last backup",
        "never": "never",
        "version": "Version",
        "update": "Update",
        "upgrade_running": "update to {to} in progress",
        "upgrade_succeeded": "updated to {to} on {at}",
        "upgrade_rolled_back": "update to {to} cancelled on {at}: version {version} runs, your data is intact",
        "upgrade_rollback_failed": "update to {to} failed on {at}: the admins know",
        "upgrade_refused": "update to {to} postponed on {at}",
        "quota": "Your offer",
        "quota_line": "{instances} of {max_instances} service(s); memory {memory} of {max_memory} MiB; disk {disk} of {max_disk} GiB",
        "no_offer": "No offer: the admins set your limits.",
        "requests": "Your requests",
        "no_requests": "No request.",
        "request_new": "Request a service",
        "request_for": "Request {service}",
        "name": "Name of the service (lower-case letters, digits, dashes)",
        "size": "Size",
        "send": "Send the request",
        "sent": "Request sent: the admins will review it.",
        "required": "required",
        "errors": "The request was not sent:",
        "reason": "Reason",
        "progress": "Progress",
        "progress_started": "starting the set-up",
        "progress_step": "step: {step}",
        "progress_health": "checking that the service answers",
        "progress_finished": "finished",
        "progress_failed": "stopped on an error: the admins will see it",
        "progress_interrupted": "interrupted, the set-up will start again",
        "progress_working": "in progress",
        "request": "Request #{id}",
        "back": "Back to your space",
        "small": "small", "medium": "medium", "large": "large",
        "pending": "pending", "approved": "approved", "rejected": "rejected", "provisioning": "being set up",
        "done": "set up", "failed": "failed", "running": "running", "planned": "planned", "suspended": "suspended",
        "deleted": "deleted", "healthy": "answers", "unhealthy": "does not answer", "unknown": "unknown", "stopped": "stopped",
        "not_found": "Page not found.",
        "too_large": "Request too large.",
        "too_many": "Too many attempts: try again in a minute.",
        "bad_form": "The form expired: reload the page and try again.",
        "language": "Français",
        "admin_signin": "Admins' sign-in",
        "admin_name": "Name",
        "password": "Password",
        "signin": "Sign in",
        "wrong_password": "Wrong name or password.",
        "review": "Requests to review",
        "recent": "Recently handled requests",
        "approve": "Approve",
        "reject": "Reject",
        "reason_needed": "Give a reason for the rejection (1000 characters at most): the association reads it.",
        "association": "Association",
        "parameters": "Parameters",
        "join": "Ask to join {collective}",
        "join_intro": "Your association is not hosted yet? Introduce it: the admins will answer by e-mail.",
        "join_slug": "Short name (lower-case letters, digits, dashes; it appears in your addresses)",
        "join_name": "Name of the association",
        "join_email": "Contact e-mail address",
        "join_message": "A few words on what you need (optional)",
        "join_send": "Send",
        "applied": "Thank you! {collective}'s admins will review your application.",
        "applications": "Associations asking to join",
        "accept": "Accept",
        "offer": "Offer",
    },
}


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """Give the language of a request: ?lang=, else the cookie, else the browser's first known one, else French."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"


def translator(language: str):
    texts = TEXTS[language]

    def t(key: str, **values) -> str:
        return texts.get(key, key).format(**values) if values else texts.get(key, key)

    return t


def members_progress(line: str, t) -> str:
    """Give what a member reads of a run's progress ``line``: the step's name or a translated phase.

    The worker's lines are written for admins and may name paths, servers or error messages; a
    member sees only the playbook's step names (ours) and the phases, in their language.
    """
    if not line:
        return ""
    if line.startswith("task: "):
        return t("progress_step", step=line.removeprefix("task: ")[:200])
    if line.startswith("interrupted"):
        return t("progress_interrupted")
    phases = {"started": "progress_started", "checking health through Caddy": "progress_health",
              "finished": "progress_finished", "failed": "progress_failed"}  # fmt: skip
    return t(phases.get(line, "progress_working"))
